# claimsmith — the two commands a newcomer needs:
#   make run    start `claimsmith serve` on embedded defaults (file store in
#               ./data seeded with samples/data, generated ES256 keys, the
#               sample pipeline) and print curl lines to try it
#   make test   install what a fresh machine lacks, vet, run every test
GO      ?= go
BIN     ?= bin/claimsmith
SHELL   := /bin/bash
DATA    ?= data
CONFIG  ?= samples/config/claimsmith.yaml
# ADDR, when set, overrides the config's server.addr for make run (the
# README test serves on a free port).
ADDR    ?=
SHOWN_ADDR = $(or $(ADDR),127.0.0.1:8080)

.PHONY: all build run dev-env dry-run test deps vet bench bench-smoke fuzz hydra e2e interop samples rule loadtest \
        browser-deps screenshots bench-tokens bench-hooks bench-login bench-wasm bench-js soak-js js-engine bench-admin bench-redis bench-redis-big flood soak-replay fuzz-admin openapi wasm-deps redis-deps nginx-deps readme-deps

all: build

build:
	$(GO) build -o $(BIN) ./cmd/claimsmith

# Development secrets for `make run` only (the config names the variables;
# production sets its own). Never use these values outside a laptop.
DEV_ENV := CLAIMSMITH_DEV_BEARER_KEY=dev-native-bearer-key \
	CLAIMSMITH_DEV_WEBHOOK_SECRET=whsec_Y2xhaW1zbWl0aC1kZXYtd2ViaG9vay1zZWNyZXQtMzJi \
	CLAIMSMITH_DEV_HYDRA_KEY=dev-hydra-key \
	CLAIMSMITH_DEV_EXTENSION_KEY=dev-extension-key \
	CLAIMSMITH_DEV_INTROSPECT_SECRET=dev-introspection-secret

# dev-env prints the `make run` configuration and secrets as shell exports,
# so the other commands read what serve reads:  eval "$$(make -s dev-env)"
dev-env:
	@for kv in CLAIMSMITH_CONFIG=$(CONFIG) CLAIMSMITH_DATA_DIR=$(DATA) $(DEV_ENV); do echo "export $$kv"; done

run: build
	@[ -e $(DATA)/HEAD ] || ./$(BIN) --data-dir $(DATA) import samples/data/claimsmith-full.json
	@echo
	@echo "claimsmith serve on http://$(SHOWN_ADDR) (data in ./$(DATA), config $(CONFIG)). Try, in another terminal:"
	@echo
	@echo "  curl -s -H 'Authorization: Bearer dev-native-bearer-key' -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"user\":{\"user_id\":\"auth0|alice\",\"email\":\"alice@example.com\",\"email_verified\":true},\"client\":{\"client_id\":\"portal-client\"},\"transaction\":{\"audience\":\"https://api.example.com/\"},\"mint\":true}' \\"
	@echo "    http://$(SHOWN_ADDR)/hooks/v1/post-login"
	@echo
	@echo "  curl -s http://$(SHOWN_ADDR)/.well-known/jwks.json"
	@echo
	@echo "  eval \"\$$(make -s dev-env)\"   # then ./$(BIN) token mint, check, policy … read this config and these secrets"
	@echo
	@echo "Admin dashboard: http://$(SHOWN_ADDR)/admin/ — serve prints a one-time sign-in link below (works once, for 15 minutes);"
	@echo "  after that sign in with a key from: ./$(BIN) --data-dir $(DATA) admin-key create --name me --scopes all"
	@echo
	@echo "Ctrl-C stops it. 'make loadtest' (in another terminal) load-tests it."
	@echo
	@exec $(PIN_SERVER) env $(DEV_ENV) CLAIMSMITH_DEV_DASHBOARD_SIGNIN=1 ./$(BIN) --data-dir $(DATA) --config $(CONFIG) serve $(if $(ADDR),--addr $(ADDR))

# dry-run: the sample events through the pipeline, no server (exit status 3,
# denied, is an expected answer for some of them).
dry-run: build
	@for ev in samples/events/*.json; do \
	  echo "== $$ev"; \
	  $(BIN) test --config $(CONFIG) --data samples/data/claimsmith-full.json --event "$$ev"; \
	  code=$$?; [ $$code = 0 ] || [ $$code = 3 ] || exit $$code; \
	done

# With two or more CPUs, `make run` pins the server to CPU 0 (taskset) and
# `make loadtest` pins its generator to CPU 1, so the two never share a core
# (PIN_SERVER= and LOADTEST_CPU=-1 turn that off).
NCPU         := $(shell nproc 2>/dev/null || echo 1)
PIN_SERVER   ?= $(if $(and $(filter-out 0 1,$(NCPU)),$(shell command -v taskset)),taskset -c 0)
LOADTEST_CPU ?= $(if $(filter-out 0 1,$(NCPU)),1,-1)

# loadtest: drive the `make run` server: the highest rate meeting p99 ≤ 2 ms
# (minting ES256 tokens), then 10 s at half of it. report.txt and
# latency.svg (naming the machine, config, data dir and its fsync) go to
# samples/loadtest/, and the README's Performance block is rewritten from
# them: commit both. LOADTEST_README= leaves the README alone.
LOADTEST_OUT    ?= samples/loadtest
LOADTEST_README ?= README.md
loadtest: build
	./$(BIN) loadtest --url http://$(SHOWN_ADDR) --find-max --duration 10s --cpu $(LOADTEST_CPU) --config $(CONFIG) --data-dir $(DATA) \
	  --out $(LOADTEST_OUT) $(if $(LOADTEST_README),--readme $(LOADTEST_README))

# deps installs what a fresh machine lacks: redis-server (tests start their
# own), wat2wasm and npm (WASM samples), Hydra (end-to-end test, built once
# per machine from the Go module proxy and cached outside the repo), nginx
# (the forward-auth end-to-end test runs Debian's nginx in front of claimsmith).
deps: redis-deps wasm-deps nginx-deps readme-deps browser-deps hydra

# readme-deps: what the README's commands use besides claimsmith (the
# README test runs them).
readme-deps:
	@for t in curl jq; do command -v $$t >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$t; \
	  else echo "$$t is missing: install it (apt-get install $$t)" >&2; exit 1; fi; }; done

# browser-deps: Debian's chromium for the dashboard's browser test, and
# playwright-core (npm, pinned; no browser download) beside the test.
browser-deps: wasm-deps
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: install it (apt-get install chromium)" >&2; exit 1; fi; }
	@[ -d hooks/dashboard/browser/node_modules/playwright-core ] || \
	  (cd hooks/dashboard/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)

# screenshots: rerun the browser test, refreshing the README's dashboard
# screenshots (hooks/dashboard/screenshots).
screenshots: browser-deps
	CLAIMSMITH_SCREENSHOTS=$(CURDIR)/hooks/dashboard/screenshots $(GO) test -count=1 -run TestDashboardInChromium ./hooks/dashboard/browser/

redis-deps:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "redis-server is missing: install it (apt-get install redis-server)" >&2; exit 1; fi; }

nginx-deps:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; \
	  else echo "nginx is missing: install it (apt-get install nginx)" >&2; exit 1; fi; }

wasm-deps:
	@command -v wat2wasm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wabt; \
	  else echo "wat2wasm is missing: install it (apt-get install wabt)" >&2; exit 1; fi; }
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	  else echo "npm is missing: install it (apt-get install nodejs npm)" >&2; exit 1; fi; }

# hydra: build Ory Hydra v2.3.0 (-tags sqlite) once per machine, cached in
# ${XDG_CACHE_HOME:-~/.cache}/claimsmith; a no-op while current.
hydra:
	samples/hydra/build.sh

vet:
	$(GO) vet ./...

# CLAIMSMITH_REQUIRE_REDIS makes the Redis tests fail, not skip, when no
# redis-server can be started; CLAIMSMITH_REQUIRE_NGINX the same for nginx,
# CLAIMSMITH_REQUIRE_BROWSER for chromium and playwright-core,
# CLAIMSMITH_REQUIRE_HYDRA for the README's Hydra sample (deps built it).
# go test prints one line per package with its time ("ok  pkg  12.3s");
# the last line sums them up with the wall time of the whole run.
# TEST_FIRST are the slowest packages: go test starts packages in the order
# given (-p at a time, GOMAXPROCS by default), so they go first instead of
# starting last and stretching the end of the run.
TEST_FIRST ?= ./runtime/wasm ./runtime/js ./cmd/claimsmith ./hooks/e2e
test: deps vet
	@log=$$(mktemp); start=$$(date +%s); \
	first=$$($(GO) list $(TEST_FIRST)) && rest=$$($(GO) list ./... | grep -vxF "$$first") || exit 1; \
	CLAIMSMITH_REQUIRE_REDIS=1 CLAIMSMITH_REQUIRE_NGINX=1 CLAIMSMITH_REQUIRE_BROWSER=1 CLAIMSMITH_REQUIRE_HYDRA=1 $(GO) test -race -timeout 25m $$first $$rest 2>&1 | tee $$log; rc=$${PIPESTATUS[0]}; \
	ok=$$(grep -c '^ok ' $$log); fail=$$(grep -c '^FAIL	' $$log); none=$$(grep -c 'no test files' $$log); \
	slow=$$(grep '^ok ' $$log | awk '{print $$3, $$2}' | sort -rn | head -3 | awk '{printf "%s%s %s", (NR>1?", ":""), $$2, $$1}'); \
	echo "make test: $$ok packages ok, $$fail failed, $$none without tests; slowest: $$slow; wall $$(( $$(date +%s) - start ))s (exit $$rc)"; \
	rm -f $$log; exit $$rc

# e2e: Hydra token hook end to end + the Auth0 Action under node:test
# (both also part of `make test`).
e2e: hydra
	$(GO) test -count=1 -run 'TestHydraEndToEnd|TestAuth0Action' -v ./hooks/e2e/

# interop: a Node relying party (npm jose, samples/clients) verifies tokens
# from a running `claimsmith serve` for every algorithm (also in `make test`).
interop:
	$(GO) test -count=1 -run Interop -v ./samples/clients/

# --- performance harness (issue 9) ---
# bench: every testing.B benchmark, -count for benchstat, raw results in
# bench-results/<date>/, then the ratio table (ratios within the same run).
BENCH_COUNT ?= 6
BENCH_TIME  ?= 500ms
BENCH_DIR   ?= bench-results/$(shell date -u +%Y%m%dT%H%M%SZ)
bench: deps
	@mkdir -p $(BENCH_DIR)
	@echo "raw results: $(BENCH_DIR)"
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCH_TIME) -count $(BENCH_COUNT) -timeout 30m ./... 2>&1 | tee $(BENCH_DIR)/all.txt
	@$(GO) run ./cmd/benchreport $(BENCH_DIR)/all.txt | tee $(BENCH_DIR)/ratios.txt
	@echo "compare two runs: go run golang.org/x/perf/cmd/benchstat@latest OLD/all.txt $(BENCH_DIR)/all.txt"

# bench-smoke: every benchmark once (-benchtime 1x) and the ratio table, so
# the harness never rots; .ci/run runs it after `make test`.
bench-smoke:
	@mkdir -p bench-results/smoke
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 10m ./... > bench-results/smoke/all.txt 2>&1 || { cat bench-results/smoke/all.txt; exit 1; }
	@$(GO) run ./cmd/benchreport -smoke bench-results/smoke/all.txt

bench-tokens:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 6 ./runtime/token/ | tee bench-results/tokens.txt
bench-hooks:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench 'NativeLogin' -benchtime 2s -count 6 ./hooks/login/ | tee bench-results/hooks.txt
# bench-login: P1/P2 only (login ÷ floor as serve builds it, the handler-level
# and memory-store variants, the data dir's fsync latency) and their rows.
bench-login:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench 'ServeLogin.*Ratio' -benchtime 2s -count 6 ./runtime/setup/ | tee bench-results/login.txt
	$(GO) test -run '^$$' -bench 'NativeLoginRatio' -benchtime 2s -count 6 ./hooks/login/ | tee -a bench-results/login.txt
	@$(GO) run ./cmd/benchreport bench-results/login.txt | grep -E '^(row|P1|P2|D1)'
bench-wasm: wasm-deps
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench Login -benchtime 2s -count 6 ./runtime/wasm/ | tee bench-results/wasm.txt
# flood: issue 14's acceptance run of unauthenticated bodies: 20,000
# connections with junk signatures declaring 256 KiB bodies and stalling;
# the heap must peak under 200 MiB and bearer logins keep being answered.
flood:
	CLAIMSMITH_FLOOD_CONNS=$(or $(FLOOD_CONNS),20000) $(GO) test ./hooks/login/ -run '^TestUnauthenticatedBodyFlood$$' -count=1 -v -timeout 30m
# soak-replay: issue 14's signed-webhook soak: SOAK_LOGINS (500,000) signed
# logins on two nodes sharing a Redis store, as fast as SOAK_WORKERS (32)
# callers get them answered, no 503; replays refused (401) on both nodes.
SOAK_LOGINS  ?= 500000
SOAK_WORKERS ?= 32
soak-replay: redis-deps
	CLAIMSMITH_REQUIRE_REDIS=1 CLAIMSMITH_SOAK_LOGINS=$(SOAK_LOGINS) CLAIMSMITH_SOAK_WORKERS=$(SOAK_WORKERS) \
	  $(GO) test ./runtime/setup/ -run '^TestSoakReplay$$' -count=1 -v -timeout 120m
bench-redis:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./runtime/authz/redis ./runtime/cache | tee bench-results/redis.txt
# bench-redis-big: the growth check up to 1,000,000 users (minutes; ~2 GiB).
bench-redis-big:
	$(GO) test -run '^$$' -bench ResolveUsers -benchtime 5000x -timeout 30m ./runtime/authz/redis -redis.big
bench-admin:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench 'Admin(GetGroup|ListGroups|AddMember)$$' -benchtime 1s -count 6 ./hooks/admin/ | tee bench-results/admin.txt
	$(GO) test -run '^$$' -bench 'AdminPatchMembersRedis' -benchtime 2000x ./hooks/admin/ | tee -a bench-results/admin.txt
	$(GO) test -run '^$$' -bench 'Authenticate' -benchtime 1s -count 6 ./runtime/admin/file/ | tee -a bench-results/admin.txt
	$(GO) test -run '^$$' -bench 'ApplyGroupMembers' -benchtime 2000x ./runtime/admin/ | tee -a bench-results/admin.txt

# fuzz: every fuzz target for a short while (FUZZTIME each).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done
fuzz-admin:
	$(GO) test -run '^$$' -fuzz '^FuzzAdminBodies$$' -fuzztime 30s ./hooks/admin/
	$(GO) test -run '^$$' -fuzz '^FuzzAdminQueryAndHeaders$$' -fuzztime 30s ./hooks/admin/

# openapi: rewrite hooks/admin/openapi.json from the admin route table.
openapi:
	$(GO) test -run '^TestOpenAPIInSync$$' ./hooks/admin/ -update-openapi

# --- WebAssembly rules (samples/rules) ---
WASM_GO_RULES := weekday-only department-claims starter
# samples: build every sample rule next to its source (samples/rules/*/NAME.wasm).
# js-engine: rebuild the embedded JavaScript engine (runtime/js/engine) after
# changing its source or goja. Reproducible: -trimpath, no build id, no VCS
# stamp, gzip without a name or time; the Go toolchain go.mod names.
# runtime/js's TestEngineArtifactIsCurrent fails when this is needed.
js-engine:
	cd runtime/js/engine && GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false \
	  -ldflags=-buildid= -buildmode=c-shared -o ../engine.wasm .
	sha256sum runtime/js/engine.wasm | cut -d' ' -f1 > runtime/js/engine.wasm.sha256
	gzip -9 -n -f runtime/js/engine.wasm
	$(GO) env GOVERSION > runtime/js/engine.go-version

# bench-js: the JavaScript engine's rows (login p10/p50/p99 per pooled call,
# the same for an empty Action (the fixed cost of a call), instance-per-call,
# start-up with a warm compile cache, RSS) and the guest
# code's own benchmarks run natively (runtime/js/engine/guest: where a
# call's time goes; -cpuprofile works there).
bench-js:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench JSLogin -benchtime 2000x -count 1 ./runtime/js/ | tee bench-results/js.txt
	$(GO) test -run '^$$' -bench JSStartupWarmCache -benchtime 5x -count 1 ./runtime/js/ | tee -a bench-results/js.txt
	$(GO) test -run TestEngineMemory -v -count 1 ./runtime/js/ | grep RSS | tee -a bench-results/js.txt
	$(GO) test -run '^$$' -bench . -benchtime 2000x -count 1 ./runtime/js/engine/guest/ | tee -a bench-results/js.txt

# soak-js: 100,000 logins through a pooled JavaScript Action under -race,
# the host heap sampled every 10,000 (a few minutes; `make test` runs 5,000).
soak-js:
	CLAIMSMITH_JS_SOAK_LOGINS=100000 $(GO) test -race -run '^TestJSLoginsHeapFlat$$' -v -count 1 -timeout 60m ./runtime/js/

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
