package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/testenv"
)

// leakCheck collects everything the consumer printed or served, to search
// it for planted secrets.
type leakCheck struct {
	t        *testing.T
	planted  map[string]string
	captured map[string]string
}

// capture records text produced by the step named name.
func (l *leakCheck) capture(name, text string) { l.captured[name] += text }

// verify fails the test for every planted secret found in a capture, as
// is or base64-encoded.
func (l *leakCheck) verify() {
	l.t.Helper()
	for what, v := range l.planted {
		forms := map[string]string{
			"plain":      v,
			"base64":     base64.StdEncoding.EncodeToString([]byte(v)),
			"base64 raw": base64.RawStdEncoding.EncodeToString([]byte(v)),
			"base64 url": base64.RawURLEncoding.EncodeToString([]byte(v)),
		}
		for name, text := range l.captured {
			for form, f := range forms {
				if strings.Contains(text, f) {
					l.t.Errorf("%s leaked (%s) in %s", what, form, name)
				}
			}
		}
	}
	total := 0
	for _, text := range l.captured {
		total += len(text)
	}
	l.t.Logf("searched %d captures (%d bytes) for %d planted secrets", len(l.captured), total, len(l.planted))
}

// runBinary runs the consumer binary with env added to the environment and
// returns its exit error and combined output; it kills it after limit.
func runBinary(t *testing.T, args []string, env map[string]string, limit time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...) //nolint:gosec // Test binary and arguments.
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not exit within %s; output:\n%s", args[0], limit, out)
	}
	return string(out), err
}

// TestSecretsNeverLeak plants a unique value in every secret setting — the
// Kafka SASL password, the ClickHouse password and the two API keys, given
// through the environment, files, flags and the YAML file — and runs
// --print-config, check, a consumer that writes rows (with debug logs, a
// /metrics scrape and an API that refuses one key) and failing logins. No
// output, log line or metric may contain a planted value or its base64
// form.
func TestSecretsNeverLeak(t *testing.T) {
	e := startSecureEnv(t)
	embedKey := "sk-planted-embed-" + testenv.Name("k")
	wrongSentimentKey := "sk-planted-sentiment-" + testenv.Name("k")
	wrongKafka := "planted-wrong-kafka-" + testenv.Name("pw")
	wrongCH := "planted-wrong-clickhouse-" + testenv.Name("pw")
	l := &leakCheck{t: t, captured: map[string]string{}, planted: map[string]string{
		"kafka sasl password":        e.scramPass,
		"kafka plain password":       e.plainPass,
		"clickhouse password":        e.ch.Password,
		"embedding api key":          embedKey,
		"sentiment api key":          wrongSentimentKey,
		"wrong kafka password":       wrongKafka,
		"wrong clickhouse password":  wrongCH,
		"sentiment api key (server)": "sk-server-only-" + testenv.Name("k"),
	}}
	defer l.verify()

	// The API accepts embedKey on the embeddings endpoint and refuses the
	// sentiment key with a 401 like OpenAI's, so both the success and
	// the failure path of an API key are exercised.
	sim, err := openaisim.New(openaisim.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var accepted, refused atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := embedKey
		if strings.Contains(r.URL.Path, "/chat/") {
			want = l.planted["sentiment api key (server)"]
		}
		if r.Header.Get("Authorization") != "Bearer "+want {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided: sk-p****. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`)
			return
		}
		accepted.Add(1)
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)

	admin := e.kafka.Connect(t, "scram-sha-512", e.scramUser, e.scramPass)
	chh := e.ch.Handle()
	topic, group, db := testenv.Name("leak"), testenv.Name("group"), testenv.Name("leak")
	admin.CreateTopic(t, topic, 2)
	admin.CreateTopic(t, topic+".dlq", 1)
	chh.DropDatabaseAtEnd(t, db)

	dir := t.TempDir()
	file := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := func(cmd string) []string {
		args := e.baseArgs(cmd, topic, group, db)
		args = append(args, "--log.level", "debug",
			"--kafka.sasl.mechanism", "scram-sha-512", "--kafka.sasl.username", e.scramUser,
			"--stages.embedding.enabled", "--stages.embedding.base_url", api.URL+"/v1",
			"--stages.embedding.dimensions", "32", "--stages.embedding.max_attempts", "2",
			"--stages.sentiment.enabled", "--stages.sentiment.base_url", api.URL+"/v1",
			"--stages.sentiment.max_attempts", "2", "--stages.sentiment.on_failure", "skip")
		return args
	}
	secretEnv := map[string]string{
		"TEXTPULSE_KAFKA_SASL_PASSWORD":      e.scramPass,
		"TEXTPULSE_CLICKHOUSE_PASSWORD":      e.ch.Password,
		"TEXTPULSE_STAGES_EMBEDDING_API_KEY": embedKey,
		"TEXTPULSE_STAGES_SENTIMENT_API_KEY": wrongSentimentKey,
	}
	withEnv := func(overrides map[string]string) map[string]string {
		env := maps.Clone(secretEnv)
		maps.Copy(env, overrides)
		return env
	}
	fileArgs := []string{
		"--kafka.sasl.password_file", file("kafka", e.scramPass),
		"--clickhouse.password_file", file("clickhouse", e.ch.Password),
		"--stages.embedding.api_key_file", file("embed", embedKey),
		"--stages.sentiment.api_key_file", file("sentiment", wrongSentimentKey),
	}

	// --print-config with the secrets from the environment, from flags
	// and from a YAML file.
	out, err := runBinary(t, append(base("run"), "--print-config"), secretEnv, time.Minute)
	if err != nil {
		t.Fatalf("print-config: %v\n%s", err, out)
	}
	l.capture("print-config (env)", out)
	out, err = runBinary(t, append(base("run"), "--print-config", "--kafka.sasl.password", e.scramPass,
		"--clickhouse.password", e.ch.Password, "--stages.embedding.api_key", embedKey,
		"--stages.sentiment.api_key", wrongSentimentKey), nil, time.Minute)
	if err != nil {
		t.Fatalf("print-config: %v\n%s", err, out)
	}
	l.capture("print-config (flags)", out)
	yaml := fmt.Sprintf("kafka:\n  sasl:\n    password: %q\nclickhouse:\n  password: %q\nstages:\n  embedding:\n    api_key: %q\n  sentiment:\n    api_key: %q\n",
		e.scramPass, e.ch.Password, embedKey, wrongSentimentKey)
	out, err = runBinary(t, append(base("run"), "--print-config", "--config", file("config.yaml", yaml)), nil, time.Minute)
	if err != nil {
		t.Fatalf("print-config: %v\n%s", err, out)
	}
	l.capture("print-config (yaml)", out)
	// Each form must show the four secrets as set, and redacted.
	for _, name := range []string{"print-config (env)", "print-config (flags)", "print-config (yaml)"} {
		if n := strings.Count(l.captured[name], "'[redacted]'"); n != 4 {
			t.Errorf("%s shows %d redacted secrets, want 4:\n%s", name, n, l.captured[name])
		}
	}

	// check and migrate with the secrets from files.
	out, err = runBinary(t, append(base("migrate"), fileArgs...), nil, time.Minute)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	l.capture("migrate", out)
	// check probes the API stages too: it reports the wrong sentiment key.
	out, err = runBinary(t, append(base("check"), fileArgs...), nil, time.Minute)
	if err == nil || !strings.Contains(out, "FAIL sentiment api") || !strings.Contains(out, "ok   embedding api") {
		t.Fatalf("check: want the embedding stage ok and the sentiment stage failing: %v\n%s", err, out)
	}
	l.capture("check", out)

	// Failing logins: a wrong Kafka password and a wrong ClickHouse
	// password, at check and at run.
	for _, step := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"check with wrong passwords", base("check"), withEnv(map[string]string{
			"TEXTPULSE_KAFKA_SASL_PASSWORD": wrongKafka, "TEXTPULSE_CLICKHOUSE_PASSWORD": wrongCH})},
		{"run with wrong clickhouse password", base("run"), withEnv(map[string]string{
			"TEXTPULSE_CLICKHOUSE_PASSWORD": wrongCH})},
		{"run with wrong kafka password", append(base("run"), "--kafka.sasl.mechanism", "plain",
			"--kafka.sasl.username", e.plainUser, "--kafka.sasl.password_file", file("wrong-kafka", wrongKafka),
			"--clickhouse.password_file", file("ch2", e.ch.Password)), withEnv(map[string]string{
			"TEXTPULSE_KAFKA_SASL_PASSWORD": "", "TEXTPULSE_CLICKHOUSE_PASSWORD": ""})},
	} {
		out, err := runBinary(t, step.args, step.env, 90*time.Second)
		if err == nil {
			t.Fatalf("%s succeeded:\n%s", step.name, out)
		}
		if !strings.Contains(strings.ToLower(out), "authentication failed") {
			t.Errorf("%s does not report the failed login:\n%s", step.name, out)
		}
		l.capture(step.name, out)
	}

	// A consumer that writes rows: embedding accepted, sentiment refused.
	values, _ := makeEvents(300, 0)
	admin.Produce(t, topic, 2, values)
	cmd := exec.Command(binPath, base("run")...) //nolint:gosec // Test binary and arguments.
	cmd.Env = os.Environ()
	for k, v := range secretEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &harness.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	itest.Eventually(t, 90*time.Second, func() (bool, string) {
		_, distinct, _, err := chh.Counts(context.Background(), db, "events")
		if err != nil {
			return false, err.Error()
		}
		return distinct == uint64(len(values)), fmt.Sprintf("%d of %d rows", distinct, len(values))
	})
	m := regexp.MustCompile(`http listening.*addr=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no http address in the log:\n%s", logs.String())
	}
	code, metrics := httpGet(t, "http://"+m[1]+"/metrics")
	if code != http.StatusOK || !strings.Contains(metrics, "textpulse_sink_rows_inserted_total") {
		t.Fatalf("/metrics answered %d:\n%.2000s", code, metrics)
	}
	l.capture("/metrics", metrics)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("consumer exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("consumer did not stop after SIGTERM")
	}
	l.capture("run log", logs.String())
	for _, want := range []string{"level=DEBUG", "status 401"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the run log lacks %q: debug logging and the refused key must be in what is searched", want)
		}
	}

	var partial, embedded uint64
	if err := chh.Conn.QueryRow(context.Background(), fmt.Sprintf(
		"SELECT countIf(status = 'partial'), countIf(length(embedding) = 32) FROM %s.events", db)).Scan(&partial, &embedded); err != nil {
		t.Fatal(err)
	}
	if accepted.Load() == 0 || refused.Load() == 0 || embedded == 0 || partial == 0 {
		t.Errorf("the API saw %d accepted and %d refused requests, %d rows embedded, %d partial: both key paths must be exercised",
			accepted.Load(), refused.Load(), embedded, partial)
	}
}
