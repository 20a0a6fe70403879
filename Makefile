# Targets for working on recledger; `make help` lists them.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 20s
SOAK ?= 30m
# make release: the platforms to build, and where; the store is pure Go, so
# every binary is static (CGO_ENABLED=0) and cross-compiles without a toolchain.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
DIST ?= dist
# make image: the platforms staged for the Dockerfile, the CA bundle copied
# into the image, the tool that builds it and the image's name.
IMAGE_PLATFORMS ?= linux/$(shell go env GOARCH)
IMAGE_DIR ?= dist/image
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
CONTAINER ?= docker
IMAGE ?= recledger:$(patsubst v%,%,$(VERSION))
FUZZ_TARGETS = ./rc:FuzzParse ./rc:FuzzScan ./rc:FuzzVerify ./rc:FuzzParseFileName ./internal/access:FuzzSessionCookie ./internal/ingest:FuzzHandler ./internal/ledger:FuzzStorable ./internal/ledger:FuzzFindings ./internal/access:FuzzCheck ./internal/dashboard:FuzzSafeNext ./internal/engine:FuzzDecodeRecord ./internal/logbody:FuzzDecode ./internal/delivery/webhook:FuzzParseKeys ./internal/egress:FuzzParseRetryAfter ./internal/delivery/webhook:FuzzCheckURL ./internal/delivery:FuzzParseAnnounced ./internal/delivery/webhook:FuzzVerify ./internal/storagecheck:FuzzParseHosts ./internal/storagecheck:FuzzParseContentRange ./internal/simulator:FuzzParseFaults

.PHONY: help build release image-context image test lint fuzz bench bench-ingest bench-query soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/recledger with the version stamped from git
	go build -ldflags "-X main.version=$(VERSION)" -o bin/recledger ./cmd/recledger

release: ## static binaries for PLATFORMS in DIST (recledger_VERSION_OS_ARCH), version stamped, with SHA256SUMS
	@rm -rf "$(DIST)" && mkdir -p "$(DIST)"
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
	  out="$(DIST)/recledger_$(patsubst v%,%,$(VERSION))_$${os}_$${arch}$$ext"; echo "$$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o "$$out" ./cmd/recledger || exit 1; \
	done
	@cd "$(DIST)" && sha256sum recledger_* > SHA256SUMS && cat SHA256SUMS

image-context: ## stage static linux binaries (IMAGE_PLATFORMS) and the CA bundle in IMAGE_DIR for the Dockerfile
	@rm -rf "$(IMAGE_DIR)" && mkdir -p "$(IMAGE_DIR)/data" "$(IMAGE_DIR)/tmp" && chmod 0700 "$(IMAGE_DIR)/data" && chmod 1777 "$(IMAGE_DIR)/tmp"
	@test -r "$(CA_CERTS)" || { echo "no CA bundle at $(CA_CERTS): install ca-certificates or set CA_CERTS"; exit 1; }
	@cp "$(CA_CERTS)" "$(IMAGE_DIR)/ca-certificates.crt"
	@for p in $(IMAGE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out="$(IMAGE_DIR)/$${os}_$${arch}/recledger"; echo "$$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o "$$out" ./cmd/recledger || exit 1; \
	done

# BUILDAH_FORMAT=docker: podman's default OCI format would drop the HEALTHCHECK.
image: image-context ## the container image IMAGE, FROM scratch (no base image is downloaded), built by CONTAINER (docker or podman)
	BUILDAH_FORMAT=docker $(CONTAINER) build -t $(IMAGE) .

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
