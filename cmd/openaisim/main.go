// Command openaisim serves an OpenAI-compatible API for tests and
// benchmarks: POST /v1/embeddings, POST /v1/chat/completions (with the
// sentiment batch protocol of package openaisim), the Files and Batch APIs
// (/v1/files, /v1/batches), GET /v1/models, GET /healthz and GET /stats.
// Latency, per-minute limits, injected faults and the batch behaviour are
// set by flags; fault flags without an endpoint prefix apply to both
// endpoints unless the prefixed flag is given too.
//
//	openaisim --listen 127.0.0.1:8089
//	openaisim --embeddings-latency 300ms --embeddings-latency-p99 900ms \
//	    --chat-latency 1.5s --chat-latency-p99 4s --chat-rpm 500 --chat-tpm 200000
//	openaisim --fault-5xx 0.01 --fault-429-storm 0.001 --storm-duration 5s --seed 7
//	openaisim --batch-completion-delay 30s --batch-failure-rate 0.01 --batch-max-requests 1000
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "openaisim:", err)
		os.Exit(1)
	}
}
