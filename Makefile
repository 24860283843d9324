# epaxosd build, test and code generation.
# The protobuf generators are pinned here and installed into ./bin by `make tools`;
# protoc itself is Debian's protobuf-compiler (3.21.12), installed by .ci/run.

GO            ?= go
BIN           := $(CURDIR)/bin
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOS        := proto/epaxos.proto proto/plugin.proto proto/storage.proto

.PHONY: all build test test-go test-race lint vet proto proto-check protoc tools dev clean

all: build

build:
	$(GO) build -o $(BIN)/epaxosd ./cmd/epaxosd

dev: build
	$(BIN)/epaxosd dev

# test is the full suite: the README's test command and what CI runs.
test: proto-check lint test-race test-go

# test-go runs every package's tests, the end-to-end ones included.
test-go:
	$(GO) test -count=1 ./...

# test-race runs the concurrent and protocol packages under the race detector.
test-race:
	$(GO) test -count=1 -race ./replica/... ./daemon/... ./transport/... ./client/...

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

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
