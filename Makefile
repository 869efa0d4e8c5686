# nvidiaprep: `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
export CGO_CFLAGS ?= -Wno-deprecated-declarations
GO ?= go
BIN := bin
# Go test's own timeout for the real-container tests.
INTEGRATION_TIMEOUT ?= 40m

.PHONY: all deps build demo test unit integration fuzz bench vet clean

all: build

## deps: Debian packages (LXC, debootstrap, ...), the cached container root
## file system, and the Go modules.
deps:
	bash integration/setup.sh
	$(GO) mod download

build:
	$(GO) build -trimpath -o $(BIN)/nvidiaprep-hook ./hook
	$(GO) build -trimpath -o $(BIN)/nvidiaprep ./nvidiaprep

## demo: a real LXC container started the way Proxmox starts it, with
## stand-in GPU nodes, and what it sees.
demo: deps
	$(GO) run ./integration/demo

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

unit:
	$(GO) test ./...

## fuzz: each fuzz target for a fixed budget; the corpus lives in testdata/.
fuzz:
	$(GO) test ./nvidiaprep/lxcconf -run '^$$' -fuzz FuzzApply -fuzztime 20s
	$(GO) test ./nvidiaprep/config -run '^$$' -fuzz FuzzLoad -fuzztime 20s

## integration: every test, the real-container ones included (-p 1: containers
## of all packages share the machine's vmids and cgroups).
integration: build
	$(GO) test -tags integration -p 1 -count=1 -timeout $(INTEGRATION_TIMEOUT) ./...

## test: everything, real containers included.
test: deps vet fuzz integration

## bench: the start path and provisioning on real containers, side by side
## with the usual way, as one table (also written to docs/bench.md).
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 200x ./nvidiaprep/...
	$(GO) run ./integration/bench -o docs/bench.md

clean:
	rm -rf $(BIN)
