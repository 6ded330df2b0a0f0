package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/openaisim"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, o *options)
		bad   bool
	}{
		{"defaults", nil, func(t *testing.T, o *options) {
			if o.listen != "127.0.0.1:8089" || o.sim.EmbeddingModels["text-embedding-3-large"] != 3072 {
				t.Errorf("options %+v", o)
			}
		}, false},
		{"latency and limits", []string{"--embeddings-latency", "300ms", "--embeddings-latency-p99", "900ms", "--chat-latency", "1.5s", "--chat-latency-p99", "4s", "--chat-rpm", "10", "--embeddings-tpm", "1000"}, func(t *testing.T, o *options) {
			e, c := o.sim.Embeddings, o.sim.Chat
			if e.Latency.Median != 300*time.Millisecond || e.Latency.P99 != 900*time.Millisecond || c.Latency.Median != 1500*time.Millisecond || c.Latency.P99 != 4*time.Second || c.RPM != 10 || e.TPM != 1000 {
				t.Errorf("options %+v", o.sim)
			}
		}, false},
		{"global and endpoint faults", []string{"--fault-5xx", "0.1", "--chat-fault-5xx", "0.3", "--fault-429-storm", "0.01"}, func(t *testing.T, o *options) {
			e, c := o.sim.Embeddings.Faults, o.sim.Chat.Faults
			if e.ServerError != 0.1 || c.ServerError != 0.3 || e.Storm != 0.01 || c.Storm != 0.01 {
				t.Errorf("faults %+v %+v", e, c)
			}
		}, false},
		{"models", []string{"--embedding-models", "a=8,b=16", "--chat-models", "x,y"}, func(t *testing.T, o *options) {
			if len(o.sim.EmbeddingModels) != 2 || o.sim.EmbeddingModels["b"] != 16 || len(o.sim.ChatModels) != 2 {
				t.Errorf("models %v %v", o.sim.EmbeddingModels, o.sim.ChatModels)
			}
		}, false},
		{"batch", []string{"--batch-completion-delay", "0s", "--batch-failure-rate", "0.1", "--batch-expire-fraction", "0.5", "--batch-max-requests", "10", "--batch-max-file-bytes", "1000"}, func(t *testing.T, o *options) {
			b := o.sim.Batch
			if b.CompletionDelay != 0 || b.FailureRate != 0.1 || b.ExpireFraction != 0.5 || b.MaxRequestsPerFile != 10 || b.MaxFileBytes != 1000 {
				t.Errorf("batch %+v", b)
			}
		}, false},
		{"batch defaults", nil, func(t *testing.T, o *options) {
			if o.sim.Batch != openaisim.DefaultBatch() {
				t.Errorf("batch %+v", o.sim.Batch)
			}
		}, false},
		{"batch limit above the API's", []string{"--batch-max-requests", "50001"}, nil, true},
		{"fault out of range", []string{"--fault-timeout", "2"}, nil, true},
		{"bad log level", []string{"--log-level", "loud"}, nil, true},
		{"extra argument", []string{"serve"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if tc.bad {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--log-level", "warn"}, pw, io.Discard)
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read address: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	base := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	body := `{"model":"text-embedding-3-small","input":["a","b"]}`
	resp, err := http.Post(base+"/v1/embeddings", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/v1/batches")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("list batches: status %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st openaisim.Stats
	err = json.NewDecoder(resp.Body).Decode(&st)
	_ = resp.Body.Close()
	if err != nil || st.Embeddings.Inputs != 2 {
		t.Fatalf("stats %+v: %v", st, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop")
	}
}
