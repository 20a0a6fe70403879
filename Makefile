# Targets for working on recledger; `make help` lists them.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 20s
SOAK ?= 30m
FUZZ_TARGETS = ./rc:FuzzParse ./rc:FuzzScan ./rc:FuzzVerify ./rc:FuzzParseFileName ./internal/access:FuzzSessionCookie ./internal/ingest:FuzzHandler ./internal/ledger:FuzzStorable ./internal/access:FuzzCheck ./internal/dashboard:FuzzSafeNext ./internal/engine:FuzzDecodeRecord ./internal/logbody:FuzzDecode ./internal/delivery/webhook:FuzzParseKeys ./internal/delivery/webhook:FuzzParseRetryAfter ./internal/delivery/webhook:FuzzCheckURL ./internal/delivery:FuzzParseAnnounced ./internal/delivery/webhook:FuzzVerify

.PHONY: help build test lint fuzz bench bench-ingest bench-query soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/recledger with the version stamped from git
	go build -ldflags "-X main.version=$(VERSION)" -o bin/recledger ./cmd/recledger

test: ## run the tests (the README's command)
	go test ./...

lint: ## gofmt, go vet and staticcheck; fails on any finding
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...

fuzz: ## run each fuzz target for FUZZTIME (default 20s); a finding fails it
	@FUZZTIME=$(FUZZTIME) bash .ci/fuzz $(FUZZ_TARGETS)

bench: ## run the Go benchmarks (5 counts, for benchstat)
	go test ./rc ./internal/sqlitestore ./internal/engine ./internal/logbody -run '^$$' -bench . -benchmem -count 5

bench-ingest: ## bare handler vs durable ingest over HTTP, 16 and 64 clients (BENCHMARKS.md)
	go run ./bench/ingest -clients 16,64 -duration 10s -warmup 2s

bench-query: ## query latency over 1M generated recordings, DB size, RSS (BENCHMARKS.md; ~5 min, ~6 GB)
	go run ./bench/query -recordings 1000000 -requests 2000

soak: build ## SOAK (default 30m) at half the measured capacity, every fault on; plot in docs/soak.svg (not in CI)
	go run ./bench/soak -bin bin/recledger -duration $(SOAK)
