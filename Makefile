# epaxosd build, test and code generation.
# The protobuf generators are pinned here and installed into ./bin by `make tools`;
# protoc itself is Debian's protobuf-compiler (3.21.12), installed by .ci/run.

GO            ?= go
BIN           := $(CURDIR)/bin
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOS        := proto/epaxos.proto proto/plugin.proto

.PHONY: all build test test-race vet proto proto-check tools dev clean

all: build

build:
	$(GO) build -o $(BIN)/epaxosd ./cmd/epaxosd

dev: build
	$(BIN)/epaxosd dev

test:
	$(GO) test ./...

test-race:
	$(GO) test -race ./replica/...

vet:
	$(GO) vet ./...

tools: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc

$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# proto regenerates the committed Go code from proto/*.proto.
proto: tools
	PATH=$(BIN):$$PATH protoc -I proto \
		--go_out=. --go_opt=module=github.com/epaxosd/epaxosd \
		--go-grpc_out=. --go-grpc_opt=module=github.com/epaxosd/epaxosd \
		$(PROTOS)

# proto-check fails when the committed generated code is stale.
proto-check: tools
	@tmp=$$(mktemp -d) && \
	PATH=$(BIN):$$PATH protoc -I proto \
		--go_out=$$tmp --go_opt=module=github.com/epaxosd/epaxosd \
		--go-grpc_out=$$tmp --go-grpc_opt=module=github.com/epaxosd/epaxosd \
		$(PROTOS) && \
	diff -r $$tmp/proto proto -x '*.proto' && echo "generated protobuf code is up to date"; \
	rc=$$?; rm -rf $$tmp; exit $$rc

clean:
	rm -rf $(BIN)
