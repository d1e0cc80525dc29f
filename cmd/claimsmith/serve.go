package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

const serveHelp = `Usage: claimsmith [--data-dir DIR] [--config FILE] serve [flags]

Runs the HTTP server until SIGTERM or Ctrl-C, then stops accepting and lets
requests in flight finish (server.shutdown_timeout, default 20s).

Reload without downtime: SIGHUP (kill -HUP PID) or POST /api/reload (admin
key with write:authz) re-reads the config file and validates all of it as
at start ('claimsmith check' refuses the same files): the pipeline (every
rule built, every wasm module compiled), the hooks section (with the
secrets of the environment variables it names) and the forward_auth
section are built completely, then swapped in atomically.
Logins already running finish on the pipeline they started on; the old one
is closed after its last login. A file that fails to load or build is
rejected with the reason (logged; 400 from the endpoint, 409 while another
reload runs) and the running configuration keeps serving. A reload that has
not finished within server.reload_timeout (default 1m; a module's
initialisers that never return, …) is abandoned and rejected (409, naming
the timeout), and so is one running when the server shuts down: neither
holds up the next reload or SIGTERM. The server,
tokens, store, redis, cache and admin sections take effect only at restart
(a reload warns when they changed).

Endpoints:
  POST /oauth2/introspect                 RFC 7662 (+ RFC 9701 JWT answers, live=true)
  POST /oauth2/revoke                     RFC 7009
  GET  /hooks/forward-auth                gateways (nginx auth_request, Traefik, Caddy):
                                          the forward_auth section's path rules; 200 +
                                          X-Auth-* identity headers, 401 or 403 (404 when
                                          forward_auth is not enabled)
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
  /admin/...                              admin dashboard (sign in with an admin key; 404
                                          when admin.dashboard.enabled is false)

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
    reload_timeout: 1m                       # a longer reload is abandoned (rejected)
    max_header_bytes: 65536
    gogc: 400                                # GC percent (default: $GOGC, else 400)
    memory_limit: 512MiB                     # soft heap limit (B, KiB, MiB, GiB)
  tokens: see 'claimsmith token -h'
  store:
    backend: file                            # file (the data dir) | redis
    on_unavailable: fail_closed              # redis: fail_closed | last_snapshot
    max_staleness: 5m                        # last_snapshot only
    file:                                    # file only: profile changes (app/user_metadata)
      durability: sync                       # sync: answered once on disk, a crash loses
                                             # nothing answered; relaxed: answered at once,
                                             # a crash loses at most the last commit_window
      commit_window: 0s                      # sync: wait to batch more (0: none);
                                             # relaxed: the loss bound (default 10ms)
      checkpoint_bytes: 4194304              # journal size before a background checkpoint
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
  admin:
    dashboard:                               # the admin dashboard at /admin/
      enabled: true                          # false: /admin/ answers 404 (the API stays)
      session_idle: 30m                      # a session unused this long ends (>= 1m)
      session_max: 12h                       # any session ends this old (>= session_idle)
      secure_cookies: false                  # Secure cookie on plain HTTP too (behind a
                                             # TLS-terminating proxy; always under TLS)

Flags (override the file):
`

// serveUsage is serve's help with the hooks section placed before the flags.
func serveUsage() string {
	const flags = "Flags (override the file):"
	if before, after, ok := strings.Cut(serveHelp, flags); ok {
		return before + strings.TrimPrefix(login.Help(), "\n") + "\n" + flags + after
	}
	return serveHelp + login.Help()
}

func runServe(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var o setup.Overrides
	fs.StringVar(&o.Addr, "addr", "", "listen address (server.addr; default 127.0.0.1:8080)")
	fs.StringVar(&o.Issuer, "issuer", "", "token issuer URL (tokens.issuer; default http(s)://ADDR)")
	fs.StringVar(&o.TLSCertFile, "tls-cert", "", "TLS certificate file (server.tls_cert_file)")
	fs.StringVar(&o.TLSKeyFile, "tls-key", "", "TLS private key file (server.tls_key_file)")
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
	cfg, err := a.config()
	if err != nil {
		return err
	}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: a.env(), Overrides: o})
	if err != nil {
		return err
	}
	defer srv.Close()
	rctx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go reloadOnSignal(rctx, a, hup, srv)
	return srv.Run(ctx)
}

// notifyReload starts catching SIGHUP (whose default action ends the
// process) as early as serve starts; stop undoes it.
func notifyReload() (hup <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// reloadOnSignal reloads on every SIGHUP until ctx ends. A rejected
// configuration is logged by the reloader; the old one keeps serving.
func reloadOnSignal(ctx context.Context, a *app, hup <-chan os.Signal, srv *setup.Server) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if a.configPath == "" {
				a.log.WarnContext(ctx, "SIGHUP: no configuration file (--config) to reload")
				continue
			}
			a.log.InfoContext(ctx, "SIGHUP: reloading the configuration", "file", a.configPath)
			_, _ = srv.Reload(ctx)
		}
	}
}
