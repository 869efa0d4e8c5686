# nvidiaprep: `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
export CGO_CFLAGS ?= -Wno-deprecated-declarations
GO ?= go
BIN := bin
# Go test's own timeout for the real-container tests.
INTEGRATION_TIMEOUT ?= 40m

.PHONY: all deps build demo test unit integration fuzz bench vet shellcheck clean

all: build

## deps: Debian packages (LXC, debootstrap, ...), the cached container root
## file system, and the Go modules.
deps:
	bash integration/setup.sh
	$(GO) mod download

# The hookscript is static and without cgo (no liblxc, no NVML): it starts
# even when those libraries cannot be loaded (hook/static_test.go keeps it so).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/nvidiaprep-hook ./hook
	$(GO) build -trimpath -o $(BIN)/nvidiaprep ./nvidiaprep

## demo: a real LXC container started the way Proxmox starts it, with
## stand-in GPU nodes, and what it sees.
demo: deps
	$(GO) run ./integration/demo

## vet: every build of the tree, the tiers' test files (dkms, toolkit) too,
## which no other target of make test compiles.
vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags 'integration dkms toolkit' ./integration/

unit:
	$(GO) test ./...

## shellcheck: every shell script the project ships or runs: the files named
## *.sh and those whose #! line names a shell (debian/'s maintainer scripts,
## packaging/, integration/, .ci/run, docs/), each in the dialect of its #!
## line. The provisioning worker's scripts run as /bin/sh -c inside
## containers, whose /bin/sh may be dash or busybox: POSIX sh.
CT_SCRIPTS = nvidiaprep/provision/scripts/*.sh
SHELL_SCRIPTS = $(shell find . \( -path ./.git -o -path ./build -o -path ./bin -o -path ./nvidiaprep/provision/scripts \) -prune \
	-o -type f ! -name '*.go' -print0 | xargs -0 awk 'FNR == 1 { if (FILENAME ~ /\.sh$$/ || /^\#!.*[/ ](ba|da)?sh([ \t]|$$)/) print FILENAME; nextfile }' | sort)
shellcheck:
	@command -v shellcheck >/dev/null || { echo "make shellcheck: shellcheck is not installed: make deps installs it (integration/setup.sh)" >&2; exit 1; }
	shellcheck -s sh $(CT_SCRIPTS)
	shellcheck -x -P SCRIPTDIR $(SHELL_SCRIPTS)

## fuzz: each fuzz target for a fixed number of inputs, sized to about 15 s
## each here (four targets: under 2 minutes with their builds). A count, not a
## duration: with -fuzztime <duration>, Go 1.26's fuzzing coordinator can fail
## a clean run with "context deadline exceeded" as the time runs out, writing
## no failing input (golang/go#75804, fixed in Go 1.27); CI hit it on FuzzLoad.
## The corpus lives in each package's testdata/fuzz/ and also runs with every
## plain `go test`.
fuzz:
	$(GO) test ./nvidiaprep/lxcconf -run '^$$' -fuzz '^FuzzApply$$' -fuzztime 1000000x
	$(GO) test ./nvidiaprep/devplan -run '^$$' -fuzz '^FuzzLines$$' -fuzztime 500000x
	$(GO) test ./nvidiaprep/lxcconf/lxcparse -run '^$$' -fuzz '^FuzzLiblxcAcceptsTheBlock$$' -fuzztime 10000x
	$(GO) test ./nvidiaprep/config -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime 300000x

## integration: every test, the real-container ones included (-p 1: containers
## of all packages share the machine's vmids and cgroups).
integration: build
	$(GO) test -tags integration -p 1 -count=1 -timeout $(INTEGRATION_TIMEOUT) ./...

## toolkit: Debian 12's full CUDA toolkit (nvidia-cuda-toolkit: about 65
## packages, 1.5 GiB to download once into the test cache, 5 GB installed)
## in a provisioned container, against nvidiaprep's apt registration. Not
## part of `make test`: run it when the registration or the purge changes.
.PHONY: toolkit
toolkit: build
	$(GO) test -tags 'integration toolkit' -p 1 -count=1 -timeout 60m -run '^TestFullCUDAToolkit$$' ./integration/

## dkms-tier: the kernel guard with NVIDIA's real kernel module source
## (Debian's nvidia-kernel-dkms) built by real DKMS against a real Debian
## kernel: about 4 minutes of build on two cores, so not in every CI run
## (docs/kernel-updates.md).
.PHONY: dkms-tier
dkms-tier: build
	$(GO) test -tags 'integration dkms' -p 1 -count=1 -timeout $(INTEGRATION_TIMEOUT) -run '^TestKernelUpdateRealNVIDIASource$$' -v ./integration/

## test: everything, real containers included.
test: deps shellcheck vet fuzz integration

## bench: the start path and provisioning on real containers, side by side
## with the usual way, as one table (also written to docs/bench.md).
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 200x ./nvidiaprep/...
	$(GO) run ./integration/bench -o docs/bench.md

clean:
	rm -rf $(BIN)

## deb: the nvidiaprep Debian package, built with dpkg-buildpackage from a copy
## of the tree in $(DEB_OUT)/ and checked with lintian (no errors, no warnings).
## DEB_VERSION=x.y.z builds that version (a changelog entry in the copy).
.PHONY: deb
DEB_OUT ?= build/deb
DEB_PACKAGES := dpkg-dev debhelper lintian lxc-dev pkg-config
deb:
	@command -v $(GO) >/dev/null || { echo "make deb: no Go toolchain: install Go in /usr/local/go" >&2; exit 1; }
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make deb: installing$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 $$missing; \
	fi
	$(GO) mod download
	bash packaging/build-deb.sh "$(DEB_OUT)" "$(DEB_VERSION)"
