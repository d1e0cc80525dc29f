# claimsmith — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     ?= bin/claimsmith
SHELL   := /bin/bash

.PHONY: all build run test deps vet bench fuzz

all: build

build:
	$(GO) build -o $(BIN) ./cmd/claimsmith

# deps installs what a fresh machine lacks (redis-server for the tests).
deps:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "redis-server is missing: install it (apt-get install redis-server)" >&2; exit 1; fi; }

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -timeout 20m ./...

# --- rule runtime (issue 3): `make run` is the dry run of the sample events
# until the server exists. Exit status 3 (denied) is an expected answer.
run: build
	@for ev in samples/events/*.json; do \
	  echo "== $$ev"; \
	  $(BIN) test --config samples/config/claimsmith.yaml --data samples/data/claimsmith-full.json --event "$$ev"; \
	  code=$$?; [ $$code = 0 ] || [ $$code = 3 ] || exit $$code; \
	done
# --- end rule runtime ---

# --- tokens (issue 5) ---
.PHONY: interop bench-tokens
# interop: a Node relying party (npm jose, samples/clients) verifies tokens
# from a running `claimsmith serve` for every algorithm (also part of `make test`).
interop:
	$(GO) test -count=1 -run Interop -v ./samples/clients/
# bench-tokens: mint vs raw go-jose sign, verify, introspect vs verify;
# compare two runs with benchstat.
bench-tokens:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 6 ./runtime/token/ | tee bench-results/tokens.txt
# --- end tokens ---

# --- hooks / IdP dialects (issue 6) ---
.PHONY: hydra e2e bench-hooks
# hydra: build Ory Hydra v2.3.0 (-tags sqlite) once per machine, cached in
# ${XDG_CACHE_HOME:-~/.cache}/claimsmith; a no-op while current.
hydra:
	samples/hydra/build.sh
# e2e: Hydra token hook end to end + the Auth0 Action under node:test
# (both also part of `make test`).
e2e: hydra
	$(GO) test -count=1 -run 'TestHydraEndToEnd|TestAuth0Action' -v ./hooks/
# bench-hooks: native post-login over loopback HTTP vs the floor (two ES256
# signatures + decode + encode); compare runs with benchstat.
bench-hooks:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench 'NativeLogin' -benchtime 2s -count 6 ./hooks/ | tee bench-results/hooks.txt
# --- end hooks ---
