# ComputeHub. `make run` sets up this machine, builds and starts the server on
# embedded defaults; `make test` runs every check and test.
SHELL := /bin/bash
BIN   := bin/chub
GO    ?= go
# seccomp: libcontainer's seccomp filters (cgo, libseccomp-dev).
TAGS  ?= seccomp
DATA  ?= ./data
LISTEN ?= 127.0.0.1:8443

.PHONY: all build setup run test test-go test-fuzz test-sdk test-studio lint bench clean

all: build

build:
	CGO_ENABLED=1 $(GO) build -tags '$(TAGS)' -o $(BIN) ./cmd/chub

# Installs the few system packages the local runtime and the tests use.
setup:
	@bash scripts/setup.sh

run: setup build
	@DATA=$(DATA) LISTEN=$(LISTEN) bash scripts/run.sh

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

test-go: build
	CHUB_BIN=$(abspath $(BIN)) $(GO) test -tags '$(TAGS)' -count=1 -timeout 45m ./...

# Every Go fuzz target (func FuzzX in a *_test.go file, found by scripts/fuzz.sh)
# for FUZZTIME each; no root and no server needed.
FUZZTIME ?= 3s
test-fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

test-sdk: build
	CHUB_BIN=$(abspath $(BIN)) bash sdktest/run.sh

# Studio in Debian's Chromium (playwright-core) against a real server.
test-studio: build
	CHUB_BIN=$(abspath $(BIN)) bash studiotest/run.sh

test: setup lint test-go test-fuzz test-sdk test-studio

bench: build
	CHUB_BIN=$(abspath $(BIN)) bash scripts/bench.sh --instances 20

clean:
	rm -rf bin
