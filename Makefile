# textpulse — every entry point for developers, CI and benchmarks.
#
#   make demo         start local Kafka + ClickHouse, produce sample events,
#                     run the consumer until they are in ClickHouse, show rows
#   make test         install and start the services, then lint and run every
#                     test against them (what CI runs)
#   make compat       the API stages against real third-party servers (LiteLLM's
#                     proxy, llama.cpp's llama-server; the first run builds
#                     llama-server, about 10 minutes on 2 cores)
#   make bench        benchmarks (long); make bench-quick for a smoke run,
#                     make bench-peers for textpulse against other ingest tools
#   make soak         the soak benchmark: a steady stream with all three
#                     stages for 30 minutes, the slopes of the consumer's RSS,
#                     heap, goroutines and open fds, its lag, every event
#                     verified stored (not part of make bench)
#   make eval         accuracy and macro-F1 of the bundled classifiers on
#                     the held-out posts in testdata/posts
#   make stop         stop the local services

SHELL := /bin/bash
GO ?= go
ENV := source scripts/env.sh &&
GOTEST_FLAGS ?= -count=1 -timeout 15m

.PHONY: compat compat-tools all build services tools test test-go test-serial lint vet fmt-check demo stop bench bench-quick bench-peers soak compose-check clean deploy-check fuzz chaos eval

all: build

build:
	$(GO) build -o bin/ ./cmd/...

services:
	scripts/services.sh install all
	scripts/services.sh start all

tools:
	scripts/tools.sh install

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: tools fmt-check vet
	$(ENV) golangci-lint run ./...

# The main suite runs every package in parallel; the test that stops the
# shared ClickHouse server runs alone afterwards.
# The main suite includes the LiteLLM compatibility test (its install takes
# about a minute); llama-server belongs to make compat.
test: services tools fmt-check vet compose-check deploy-check
	scripts/compat.sh install litellm
	$(ENV) golangci-lint run ./...
	$(ENV) eval "$$(scripts/compat.sh paths litellm)" && test -n "$$TEXTPULSE_COMPAT_LITELLM" && \
		TEXTPULSE_TEST_REQUIRE_SERVICES=1 $(GO) test $(GOTEST_FLAGS) ./...
	$(ENV) TEXTPULSE_TEST_REQUIRE_SERVICES=1 TEXTPULSE_TEST_SERVER_RESTART=1 \
		$(GO) test $(GOTEST_FLAGS) -run 'TestClickHouseServerRestart' -v ./cmd/consumer
	$(MAKE) fuzz
	$(GO) build -o bin/ ./cmd/consumer ./cmd/chaos
	$(ENV) bin/chaos --consumer bin/consumer --mode short --server modern

compose-check:
	scripts/check-compose.sh

# Compatibility suite: the API stages through LiteLLM's proxy in front of
# the simulator and against llama-server with a 270M GGUF model, end to end
# through Kafka and ClickHouse (cmd/consumer compat_integration_test.go),
# then the simulator's profiles (processor/llm compat_test.go).
compat-tools:
	scripts/compat.sh install all

compat: services compat-tools
	$(ENV) eval "$$(scripts/compat.sh paths all)" && TEXTPULSE_TEST_REQUIRE_SERVICES=1 TEXTPULSE_TEST_REQUIRE_COMPAT=1 \
		$(GO) test -count=1 -timeout 30m -v -run 'TestCompat' ./cmd/consumer ./processor/llm

# Each fuzz target runs for a number of executions sized to about ten
# seconds on 2 cores (FUZZTIME=30s or 1000000x overrides it for all);
# `go test` alone replays their seed corpora (and any crashers kept under
# testdata/fuzz). A count rather than a duration: with a duration, Go's fuzz
# coordinator can fail a target with a bare "context deadline exceeded" when
# the deadline fires while a starved worker is mid-call (golang/go#75804).
# New inputs are minimised for at most a second.
FUZZTIME ?=
FUZZ_TARGETS := ./processor:FuzzDecode:60000x ./processor/deadletter:FuzzParseDeadLetterHeaders:40000x \
	./cmd/consumer:FuzzDLQFilterFlags:8000x ./internal/modeleval:FuzzRead:20000x \
	./processor/llm:FuzzDecodeAnswers:20000x

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${FUZZTIME:-$${rest#*:}}; \
		echo "fuzz $$name in $$pkg for $$n"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $$n -fuzzminimizetime 1s "$$pkg"; \
	done

# Chaos: consumer SIGKILLs, members added and removed, a broker restart,
# ClickHouse stopped for a minute and API faults in one run, then proof that
# nothing was lost (cmd/chaos), on the modern server (rows exactly once)
# and then on the legacy one. It restarts the shared services: run it
# alone. `make test` runs the short form on the modern server (about a
# minute, ClickHouse down 10 s) in its serial step.
chaos: services build
	$(ENV) bin/chaos --consumer bin/consumer --mode long --server modern
	$(ENV) bin/chaos --consumer bin/consumer --mode long --server legacy

# Prometheus configuration, alert rules and their unit tests (promtool from
# Debian's prometheus package, installed by scripts/tools.sh), then the Go
# checks of the Grafana dashboards and Kubernetes manifests in deploy/.
deploy-check: services tools
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	$(ENV) TEXTPULSE_TEST_REQUIRE_SERVICES=1 $(GO) test $(GOTEST_FLAGS) ./deploy/...

demo: services tools build
	scripts/demo.sh

stop:
	scripts/services.sh stop all

bench: services tools build
	scripts/bench.sh

# The bundled emotion and sentiment classifiers, and the random-weight
# models beside them, run through package gpu on the held-out posts.
# EVAL_DEVICE=auto (or cuda) runs them on a GPU when the ONNX Runtime
# library is a CUDA build.
EVAL_DEVICE ?= cpu

eval: tools
	$(GO) build -o bin/ ./cmd/modeleval
	$(ENV) bin/modeleval -v --device $(EVAL_DEVICE)

bench-quick: services tools build
	scripts/bench.sh --quick

# textpulse against ClickHouse's Kafka engine and clickhouse-client on the
# same backlog (clickhouse_sinker too with BENCH_FLAGS=--sinker-bin=PATH).
bench-peers: services tools build
	scripts/bench.sh --scenarios peers $(BENCH_FLAGS)

soak: services tools build
	scripts/bench.sh --scenarios soak

clean:
	rm -rf bin
