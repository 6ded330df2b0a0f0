# textpulse — every entry point for developers, CI and benchmarks.
#
#   make demo         start local Kafka + ClickHouse, produce sample events,
#                     run the consumer until they are in ClickHouse, show rows
#   make test         install and start the services, then lint and run every
#                     test against them (what CI runs)
#   make bench        benchmarks (long); make bench-quick for a smoke run
#   make stop         stop the local services

SHELL := /bin/bash
GO ?= go
ENV := source scripts/env.sh &&
GOTEST_FLAGS ?= -count=1 -timeout 15m

.PHONY: all build services tools test test-go test-serial lint vet fmt-check demo stop bench bench-quick compose-check clean

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
test: services tools fmt-check vet compose-check
	$(ENV) golangci-lint run ./...
	$(ENV) TEXTPULSE_TEST_REQUIRE_SERVICES=1 $(GO) test $(GOTEST_FLAGS) ./...
	$(ENV) TEXTPULSE_TEST_REQUIRE_SERVICES=1 TEXTPULSE_TEST_SERVER_RESTART=1 \
		$(GO) test $(GOTEST_FLAGS) -run 'TestClickHouseServerRestart' -v ./cmd/consumer

compose-check:
	scripts/check-compose.sh

demo: services build
	scripts/demo.sh

stop:
	scripts/services.sh stop all

bench: services tools build
	scripts/bench.sh

bench-quick: services tools build
	scripts/bench.sh --quick

clean:
	rm -rf bin
