# registrar: the two commands are `go run ./examples/registration` and `make test`.
SHELL := /usr/bin/env bash
GO ?= go
# Packages under test; bench/ and tools/ are separate modules.
PKGS ?= ./...
TESTFLAGS ?= -race -timeout 30m
# ARTIFACTS keeps what tests save for a person to look at (the status
# page's screenshots).
ARTIFACTS ?= $(CURDIR)/.artifacts

.PHONY: browser test unit soak lint vet fmt-check tools mocks mocks-check consul postgres bench bench-quick bench-scale

# test runs every test, against a real PostgreSQL server, a real Consul agent
# (built once and cached by scripts/consul.sh), Kafka's wire protocol (kfake,
# in process) and a real headless Chromium (installed by scripts/browser.sh).
test: vet fmt-check
	@pg=$$(./scripts/postgres.sh) && consul=$$(./scripts/consul.sh) && chromium=$$(./scripts/browser.sh) && \
	  echo "make test: postgres $${pg%%\?*}, consul $$consul, chromium $$chromium; screenshots in $(ARTIFACTS)" && \
	  REGISTRAR_TEST_PG="$$pg" REGISTRAR_CONSUL_BIN="$$consul" REGISTRAR_CHROMIUM="$$chromium" REGISTRAR_ARTIFACTS="$(ARTIFACTS)" \
	  $(GO) test $(TESTFLAGS) $(PKGS)

# soak runs the chaos harness (internal/chaos) for SOAK_SEEDS seeds from
# SOAK_SEED on, with SOAK_ENTITIES entities per run, on the memory, Postgres,
# Kafka (kfake) and Consul topologies, with micro-batches and one message at
# a time. make test runs it for one seed with 150 entities. A failure names
# its seed: rerun it with -chaos.seed=N.
SOAK_SEED ?= 1
SOAK_SEEDS ?= 50
SOAK_ENTITIES ?= 250
soak:
	@pg=$$(./scripts/postgres.sh) && consul=$$(./scripts/consul.sh) && \
	  REGISTRAR_TEST_PG="$$pg" REGISTRAR_CONSUL_BIN="$$consul" $(GO) test -race -run 'TestChaos' ./internal/chaos -timeout 180m \
	    -chaos.seed=$(SOAK_SEED) -chaos.seeds=$(SOAK_SEEDS) -chaos.entities=$(SOAK_ENTITIES)

# unit runs the tests that need no external service (the others skip).
unit:
	$(GO) test $(TESTFLAGS) $(PKGS)

vet:
	$(GO) vet $(PKGS)
	cd bench && $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

lint:
	@bin=$$(./scripts/tools.sh) && "$$bin/golangci-lint" run $(PKGS) && cd bench && "$$bin/golangci-lint" run ./...

tools:
	./scripts/tools.sh

# mocks regenerates package mocks with the pinned mockery, from .mockery.yml;
# mocks-check (run by CI) changes nothing and fails when mocks/ differs from
# a fresh generation.
mocks:
	./scripts/mocks.sh

mocks-check:
	./scripts/mocks.sh -check

consul:
	./scripts/consul.sh

postgres:
	./scripts/postgres.sh

browser:
	./scripts/browser.sh

# bench runs the side-by-side benchmarks (bench/ is a module of its own, so
# `go run ./bench` from here cannot work) and prints one table; see
# bench/README.md. bench-quick is the under-a-minute version CI runs.
bench:
	cd bench && REGISTRAR_TEST_PG="$$(../scripts/postgres.sh)" $(GO) run .

bench-quick:
	cd bench && REGISTRAR_TEST_PG="$$(../scripts/postgres.sh)" $(GO) run . -quick

# bench-scale measures the scale curve at 10k, 100k and 1M nodes (6 to 12
# minutes, a few GB of RAM); it is part of neither bench nor bench-quick.
bench-scale:
	cd bench && REGISTRAR_TEST_PG="$$(../scripts/postgres.sh)" $(GO) run . -scale
