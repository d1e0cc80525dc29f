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

# --- WebAssembly rules (issue 4: runtime/wasm, rules/sdk, samples/rules) ---
.PHONY: samples rule wasm-deps bench-wasm
WASM_GO_RULES := weekday-only department-claims starter
# wasm-deps: the compilers the wasm tests use besides Go: wat2wasm (Debian's
# wabt) and npm (Debian's nodejs, npm) for the AssemblyScript sample.
wasm-deps:
	@command -v wat2wasm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wabt; \
	  else echo "wat2wasm is missing: install it (apt-get install wabt)" >&2; exit 1; fi; }
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	  else echo "npm is missing: install it (apt-get install nodejs npm)" >&2; exit 1; fi; }
# samples: build every sample rule next to its source (samples/rules/*/NAME.wasm).
samples: wasm-deps
	@for r in $(WASM_GO_RULES); do \
	  echo "go  samples/rules/$$r"; \
	  GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o samples/rules/$$r/$$r.wasm ./samples/rules/$$r || exit 1; \
	done
	@echo "asc samples/rules/add-tenant-claim"; cd samples/rules/add-tenant-claim && \
	  { [ -x node_modules/.bin/asc ] || npm ci --no-audit --no-fund --silent; } && npm run --silent build
	@echo "wat samples/rules/deny-blocked-ips"; wat2wasm samples/rules/deny-blocked-ips/deny-blocked-ips.wat -o samples/rules/deny-blocked-ips/deny-blocked-ips.wasm
# rule: start (from samples/rules/starter) or rebuild your own Go rule.
#   make rule NAME=myrule
rule:
	@[[ "$(NAME)" =~ ^[a-z0-9][a-z0-9_-]*$$ ]] || { echo "usage: make rule NAME=myrule (lower-case letters, digits, - and _)" >&2; exit 2; }
	@[ -d samples/rules/$(NAME) ] || { cp -r samples/rules/starter samples/rules/$(NAME) && rm -f samples/rules/$(NAME)/starter.wasm && \
	  sed -i 's/starter/$(NAME)/g' samples/rules/$(NAME)/main.go samples/rules/$(NAME)/claimsmith.yaml && \
	  echo "created samples/rules/$(NAME) (main.go, claimsmith.yaml) from samples/rules/starter"; }
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o samples/rules/$(NAME)/$(NAME).wasm ./samples/rules/$(NAME)
	@echo "built samples/rules/$(NAME)/$(NAME).wasm — try it:"
	@echo "  go run ./cmd/claimsmith test --config samples/rules/$(NAME)/claimsmith.yaml --data samples/data/extension-export.json --event samples/events/employee.json"
# bench-wasm: per-login cost of each sample rule, pooled, and the Go rule
# instantiated per call (the baseline).
bench-wasm: wasm-deps
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench Login -benchtime 2s -count 6 ./runtime/wasm/ | tee bench-results/wasm.txt
# --- end WebAssembly rules ---

# --- admin API (issue 8: hooks/admin*, runtime/admin, cmd/claimsmith admin commands) ---
.PHONY: fuzz-admin bench-admin openapi
# fuzz-admin: the admin API's request bodies, query strings and ETag headers.
fuzz-admin:
	$(GO) test -run '^$$' -fuzz '^FuzzAdminBodies$$' -fuzztime 30s ./hooks/
	$(GO) test -run '^$$' -fuzz '^FuzzAdminQueryAndHeaders$$' -fuzztime 30s ./hooks/
bench-admin:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench 'Admin' -benchtime 1s -count 6 ./hooks/ | tee bench-results/admin.txt
	$(GO) test -run '^$$' -bench 'Authenticate' -benchtime 1s -count 6 ./runtime/admin/ | tee -a bench-results/admin.txt
# openapi: rewrite hooks/openapi.json from the admin route table.
openapi:
	$(GO) test -run '^TestOpenAPIInSync$$' ./hooks/ -update-openapi
# --- end admin API ---
