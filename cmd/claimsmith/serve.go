package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// cacheSource is what the policy cache wraps: policies through the metered
// store, the revision from the store itself.
type cacheSource struct {
	authz.PolicyResolver
	st authz.Reader
}

func (s cacheSource) Revision(ctx context.Context) (uint64, error) { return s.st.Revision(ctx) }

// cachedWrites is the store whose writes invalidate the policy cache
// before they return.
type cachedWrites struct {
	dataStore
	w authz.Writer
}

func (s cachedWrites) Apply(ctx context.Context, expected uint64, ops ...authz.Op) (uint64, error) {
	return s.w.Apply(ctx, expected, ops...)
}

const serveHelp = `Usage: claimsmith [--data-dir DIR] [--config FILE] serve [flags]

Runs the HTTP server until SIGTERM or Ctrl-C, then stops accepting and lets
requests in flight finish (server.shutdown_timeout, default 20s).

Reload without downtime: SIGHUP (kill -HUP PID) or POST /api/reload (admin
key with write:authz) re-reads the config file: the pipeline (every rule
built, every wasm module compiled) and the hooks section (with the secrets
of the environment variables it names) are built completely, then swapped
in atomically.
Logins already running finish on the pipeline they started on; the old one
is closed after its last login. A file that fails to load or build is
rejected with the reason (logged; 400 from the endpoint, 409 while another
reload runs) and the running configuration keeps serving. The server,
tokens, store, redis and cache sections take effect only at restart (a
reload warns when they changed).

Endpoints:
  POST /oauth2/introspect                 RFC 7662 (+ RFC 9701 JWT answers, live=true)
  POST /oauth2/revoke                     RFC 7009
  GET  /.well-known/jwks.json             signing keys (next, active, retired)
  GET  /.well-known/openid-configuration  provider metadata
  GET  /healthz                           liveness: the process serves
  GET  /readyz                            readiness: 503 "unavailable" when the store is
                                          unreachable, the keys are not loaded or no
                                          compiled pipeline serves; 200 "degraded" when
                                          only an optional dependency (the policy cache)
                                          fails; 200 "ready" otherwise
  GET  /metrics                           Prometheus: claimsmith_http_requests_total
                                          {route,dialect,status}, _http_request_duration_seconds,
                                          _rule_duration_seconds{rule,kind}, _rule_errors_total
                                          {rule,cause=error|panic|timeout}, _login_decisions_total
                                          {outcome,code}, _store_errors_total{op},
                                          _config_reloads_total{result}, _config_generation,
                                          Go runtime and process metrics
  POST /api/reload                        reload the config file (admin key, write:authz)
  /api/...                                admin API (groups, roles, permissions, apps,
                                          users, import, export, audit); bearer admin
                                          keys from 'claimsmith admin-key create';
                                          GET /api/openapi.json describes it

Signing keys live in DIR/keys (generated on first start, private keys mode
0600) and are re-read every tokens.key_reload (30s), so 'claimsmith keys
rotate' takes effect without a restart. Revocations live in
DIR/revoked.jsonl. The authorization store is the file store in DIR;
logins read policies through an in-process policy cache
(claimsmith_policy_cache_* metrics) that admin API writes invalidate
before they return.

Several nodes: with store.backend redis (and the redis section) the
authorization store, signing keys, revocations, admin keys and audit log
live in Redis and every node shares them (no data dir is used or locked);
the policy cache adds a shared Redis cache, and a write on one node
reaches the others' next logins through pub/sub. If the cache's Redis
fails, logins are answered from the store and /readyz says "degraded";
if the store's Redis fails, store.on_unavailable decides (fail_closed:
logins fail; last_snapshot: served from memory for max_staleness).

Configuration (YAML; every key optional):
  server:
    addr: 127.0.0.1:8080
    tls_cert_file: /etc/claimsmith/tls.crt   # HTTPS when both are set
    tls_key_file: /etc/claimsmith/tls.key
    read_header_timeout: 5s
    read_timeout: 15s
    write_timeout: 30s
    idle_timeout: 120s                       # keep-alive for IdPs
    shutdown_timeout: 20s
    max_header_bytes: 65536
  tokens: see 'claimsmith token -h'
  store:
    backend: file                            # file (the data dir) | redis
    on_unavailable: fail_closed              # redis: fail_closed | last_snapshot
    max_staleness: 5m                        # last_snapshot only
  redis:                                     # password from $CLAIMSMITH_REDIS_PASSWORD
    addrs: [127.0.0.1:6379]                  # one node; sentinels + master_name; cluster seeds
    master_name: ""
    username: ""
    tls: false
    tls_ca_file: ""
    key_prefix: "claimsmith:"
  cache:                                     # the policy cache in front of every login
    redis: {addrs: [cache-redis:6379]}       # its own Redis (default: the redis section)
    near_size: 10000                         # in-process LRU entries (-1: off)
    near_ttl: 1m
    redis_ttl: 10m
    op_timeout: 50ms
    poll_interval: 5s

Flags (override the file):
`

func runServe(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	addr := fs.String("addr", "", "listen address (server.addr; default 127.0.0.1:8080)")
	issuer := fs.String("issuer", "", "token issuer URL (tokens.issuer; default http(s)://ADDR)")
	cert := fs.String("tls-cert", "", "TLS certificate file (server.tls_cert_file)")
	key := fs.String("tls-key", "", "TLS private key file (server.tls_key_file)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), serveUsage()); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("serve takes no arguments")}
	}
	// SIGHUP means reload, never "terminate", from the start: a reload
	// asked for while serve starts up is applied once it serves.
	hup, stopHUP := notifyReload()
	defer stopHUP()
	cfg, err := loadSections(a.configPath)
	if err != nil {
		return err
	}
	for dst, v := range map[*string]string{&cfg.Server.Addr: *addr, &cfg.Tokens.Issuer: *issuer, &cfg.Server.TLSCertFile: *cert, &cfg.Server.TLSKeyFile: *key} {
		if v != "" {
			*dst = v
		}
	}

	// The store, admin keys and audit log the config names (stores.go). A
	// file store's data dir is owned by this server: direct CLI writes are
	// refused while it runs. The Redis store is shared by every node.
	ss, err := openServeStores(ctx, a, cfg.lc, cfg.Server.Addr)
	if err != nil {
		return err
	}
	defer ss.release()
	st := ss.store
	ts, err := newTokenService(ctx, a, cfg, st, st)
	if err != nil {
		return err
	}
	defer ts.Close()

	ep := hooks.Endpoints{
		Introspect: &hooks.IntrospectHandler{Clients: ts.clients, Introspector: ts.intro, Log: a.log},
		Revoke:     &hooks.RevokeHandler{Clients: ts.clients, Revoker: ts.intro, Log: a.log},
		JWKS:       &hooks.JWKSHandler{Keys: ts.keys},
		Discovery:  &hooks.DiscoveryHandler{Issuer: ts.minter.Issuer(), Keys: ts.keys},
	}
	reg, metrics, err := newServeMetrics()
	if err != nil {
		return err
	}
	// Logins resolve policies through the in-process policy cache; admin API
	// writes go through its Writer, so the next login sees them.
	ms := newMeteredStore(st, metrics)
	pc, err := ss.policyCache(ctx, a, cacheSource{ms, st}, reg)
	if err != nil {
		return err
	}
	if err := pc.Start(ctx); err != nil {
		return err
	}
	defer pc.Close()
	reloader, err := hookReloader(ctx, a, ms, pc, ts, metrics)
	if err != nil {
		return err
	}
	checks := []hooks.ReadyCheck{
		{Name: "keys", Check: func(context.Context) error { _, err := ts.keys.Active(); return err }},
		ss.storeCheck(),
		{Name: "policy_cache", Check: pc.Check, Degrades: true},
	}
	if reloader != nil {
		defer func() {
			// After the server stopped: in-flight logins have ended, so
			// every pipeline can be closed.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Server.ShutdownTimeout+5*time.Second)
			defer cancel()
			if err := reloader.Close(cctx); err != nil {
				a.log.Warn("close pipelines", "err", err)
			}
		}()
		ep.Extra = append(ep.Extra, reloader.Routes()...)
		ep.Extra = append(ep.Extra, hooks.Route{Pattern: hooks.PatternReload, Handler: &hooks.ReloadHandler{Reloader: reloader, Keys: ss.admin.keys, Log: a.log}})
		checks = append(checks, hooks.ReadyCheck{Name: "rules", Check: reloader.Check})
	}
	ep.Extra = append(ep.Extra, hooks.MetricsRoute(reg))
	routes := ep.Routes()
	adminRoutes, err := adminServerRoutes(a, cachedWrites{dataStore: st, w: pc.Writer(st)}, ss.admin)
	if err != nil {
		return err
	}
	routes = metrics.Instrument(append(routes, adminRoutes...))
	mux, err := hooks.NewMux(routes, checks, a.log)
	if err != nil {
		return err
	}
	srv, err := hooks.NewServer(cfg.Server, mux, a.log)
	if err != nil {
		return err
	}
	mctx, stopMaintain := context.WithCancel(ctx)
	defer stopMaintain()
	go ts.keys.Maintain(mctx, ts.keyReload)
	go reloadOnSignal(mctx, a, hup, reloader)
	a.log.InfoContext(ctx, "claimsmith serve", "issuer", ts.minter.Issuer(), "routes", hooks.RoutePatterns(routes),
		"introspection_clients", len(cfg.Tokens.Introspection.Clients))
	return srv.Run(ctx)
}
