# epaxosd build, test and code generation.
# The protobuf generators are pinned here and installed into ./bin by `make tools`;
# protoc itself is Debian's protobuf-compiler (3.21.12), installed by .ci/run.

GO            ?= go
BIN           := $(CURDIR)/bin
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOS        := proto/epaxos.proto proto/plugin.proto proto/storage.proto

.PHONY: all build test test-go test-race lint vet proto proto-check protoc tools dev clean chaos fuzz-smoke test-raftkv netns-tools \
	test-report bench bench-smoke

all: build

build:
	$(GO) build -o $(BIN)/epaxosd ./cmd/epaxosd

dev: build
	$(BIN)/epaxosd dev

# test is the full suite: the README's test command and what CI runs.
test: proto-check lint netns-tools test-race test-go test-raftkv test-report bench-smoke fuzz-smoke

# test-go runs every package's tests, the end-to-end ones included.
test-go:
	$(GO) test -count=1 ./...

# test-race runs the concurrent and protocol packages under the race detector.
test-race:
	$(GO) test -count=1 -race ./replica/... ./daemon/... ./transport/... ./client/... ./session/... ./bench/

# test-raftkv tests the Raft baseline of the benchmarks, a module of its own.
test-raftkv:
	cd bench/raftkv && $(GO) vet ./... && $(GO) test -count=1 ./...

# test-report tests the benchmarks' report generator, a module of its own.
test-report:
	cd bench/report && $(GO) vet ./... && $(GO) test -count=1 ./...

# bench runs the whole benchmark on this machine (bench/matrix.sh, about
# 30 minutes on 2 cores) and writes BENCHMARKS.md and docs/bench/*.png;
# its results go to bench/results/<time>/. Settings come from the
# environment or the command line (see bench/README.md):
#   make bench QUICK=1               a tiny subset, reported in its results directory
#   make bench DURATION=20s PARTS=matrix
bench:
	bash bench/matrix.sh

# bench-smoke keeps the benchmark tools working: a few seconds of a
# 3-replica epaxosd cluster, a raftkv-mem cluster and the echo server,
# then the report, in a temporary directory (ports 17601-17647). It fails
# if any step fails or any run had no successful operation.
bench-smoke:
	SMOKE=1 DURATION=2s WARMUP=500ms PORT_BASE=17600 bash bench/matrix.sh

# chaos is the Jepsen-style fault test (chaos/, needs root): 3 and then 5
# replicas in their own network namespaces, killed, paused and partitioned
# for DURATION each (default 30s), then checked for linearizability.
#   make chaos DURATION=30m      a longer run (the go test timeout follows)
#   make chaos SEED=123          replay a seed's schedule
# Failures leave their artifacts in chaos/artifacts/ (EPAXOS_CHAOS_ARTIFACTS).
DURATION ?=
SEED     ?=
chaos: netns-tools
	@secs=$$(echo "$(or $(DURATION),30s)" | awk '{ s = 0; d = $$0; \
		while (match(d, /^[0-9.]+(h|ms|m|s)/)) { tok = substr(d, 1, RLENGTH); n = tok + 0; u = tok; sub(/^[0-9.]+/, "", u); \
			if (u == "h") s += n * 3600; else if (u == "m") s += n * 60; else if (u == "s") s += n; else s += n / 1000; \
			d = substr(d, RLENGTH + 1) } \
		print int(s) + 1 }'); \
	EPAXOS_CHAOS_DURATION=$(DURATION) EPAXOS_CHAOS_SEED=$(SEED) \
		$(GO) test -count=1 -v -timeout $$((2 * secs + 900))s ./chaos/

# fuzz-smoke fuzzes every fuzz target in the module for FUZZTIME each
# (a crash it finds is written to the package's testdata/fuzz and fails
# the run). make fuzz-smoke FUZZTIME=10m fuzzes longer.
FUZZTIME ?= 10s
fuzz-smoke:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz-smoke

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# netns-tools installs what the fault test (chaos/) needs to build its
# hosts, iproute2's ip and nftables' nft, from Debian when they are missing
# and we are root (without root the fault test skips itself anyway).
netns-tools:
	@if [ "$$(id -u)" = 0 ] && { ! command -v ip >/dev/null || ! command -v nft >/dev/null; }; then \
		echo "installing iproute2 and nftables from Debian"; \
		apt-get update -qq && apt-get install -y -qq iproute2 nftables >/dev/null; fi

# protoc installs Debian's protobuf-compiler when it is missing.
protoc:
	@command -v protoc >/dev/null || { \
		echo "installing protobuf-compiler (protoc) from Debian"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq protobuf-compiler >/dev/null; }

tools: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc

$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# proto regenerates the committed Go code from proto/*.proto.
proto: protoc tools
	PATH=$(BIN):$$PATH protoc -I proto \
		--go_out=. --go_opt=module=github.com/epaxosd/epaxosd \
		--go-grpc_out=. --go-grpc_opt=module=github.com/epaxosd/epaxosd \
		$(PROTOS)

# proto-check fails when the committed generated code is stale.
proto-check: protoc tools
	@tmp=$$(mktemp -d) && \
	PATH=$(BIN):$$PATH protoc -I proto \
		--go_out=$$tmp --go_opt=module=github.com/epaxosd/epaxosd \
		--go-grpc_out=$$tmp --go-grpc_opt=module=github.com/epaxosd/epaxosd \
		$(PROTOS) && \
	diff -r $$tmp/proto proto -x '*.proto' && echo "generated protobuf code is up to date"; \
	rc=$$?; rm -rf $$tmp; exit $$rc

clean:
	rm -rf $(BIN)
