package setup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/hooks"
	adminapi "github.com/claimsmith/claimsmith/hooks/admin"
	"github.com/claimsmith/claimsmith/hooks/dashboard"
	"github.com/claimsmith/claimsmith/hooks/forwardauth"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/hooks/oauth"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/cache"
	"github.com/claimsmith/claimsmith/runtime/exchange"
	"github.com/claimsmith/claimsmith/runtime/js"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// Overrides are command-line flags that override the file (serve's --addr,
// --issuer, --tls-cert, --tls-key). Empty fields override nothing.
type Overrides struct {
	Addr, Issuer, TLSCertFile, TLSKeyFile string
}

// apply returns a copy of cfg with the overrides in; cfg itself stays as
// read (a reload compares the file with the file).
func (o Overrides) apply(cfg *Config) *Config {
	eff := *cfg
	for dst, v := range map[*string]string{&eff.Server.Addr: o.Addr, &eff.Tokens.Issuer: o.Issuer,
		&eff.Server.TLSCertFile: o.TLSCertFile, &eff.Server.TLSKeyFile: o.TLSKeyFile} {
		if v != "" {
			*dst = v
		}
	}
	return &eff
}

// Options are what Build needs besides the configuration.
type Options struct {
	Env
	Overrides Overrides
}

// Server is claimsmith's assembled HTTP server: the store and admin stores
// the configuration names, the token service, the policy cache, the login
// pipeline with the hooks behind a reloader, the admin API, readiness and
// metrics. Build it with Build; serve it with Run or Serve; Close it.
type Server struct {
	cfg      *Config // as read from the file
	eff      *Config // with the overrides
	env      Env
	backends *Backends
	store    DataStore
	tokens   *TokenService
	cache    *cache.Cache
	jsCache  js.Cache
	reloader *hooks.Reloader
	// forwardAuth serves GET /hooks/forward-auth; a reload swaps it.
	forwardAuth forwardauth.Switch
	// exchanger serves POST /oauth2/token (nil: exchange not enabled).
	exchanger *exchange.Exchanger
	routes    []hooks.Route
	// dashboard serves /admin/; steps are the serving pipeline's, for it.
	dashboard *dashboard.Dashboard
	steps     atomic.Pointer[[]runtime.StepInfo]
	handler   http.Handler
	http      *hooks.Server
	closers   []func() // in the order of Close
	// builds ends when the server stops serving (or is closed): a reload
	// still building then is abandoned, so shutdown never waits for it.
	builds     context.Context
	stopBuilds context.CancelFunc
}

// Build assembles the server cfg describes: it validates every section
// (Validate), takes the data dir's owner lock (file backend), opens the
// stores, initialises the signing keys (generating the first), starts the
// policy cache and builds the pipeline (compiling wasm) and the hooks. It
// does not listen. Close releases everything.
func Build(ctx context.Context, cfg *Config, opt Options) (_ *Server, err error) {
	s := &Server{cfg: cfg, eff: opt.Overrides.apply(cfg), env: opt.Env.withDefaults()}
	s.builds, s.stopBuilds = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	c, env := s.eff, s.env
	if err := c.Validate(ctx, env); err != nil {
		return nil, err
	}
	b, err := OpenBackends(c, env)
	if err != nil {
		return nil, err
	}
	s.backends = b
	s.onClose(func() { _ = b.Close() })
	// A file store's data dir is owned by this server: direct CLI writes
	// are refused while it runs. A shared store has no owner.
	if !b.Shared() {
		unlock, err := LockDataDirForServer(ctx, env.DataDir, c.Server.Addr)
		if err != nil {
			return nil, err
		}
		s.onClose(unlock)
	}
	st, err := b.Store(ctx, false)
	if err != nil {
		return nil, err
	}
	s.store = st
	s.onClose(func() { _ = st.Close() })
	// From now on the loss of a shared store's data is detected.
	if in, ok := st.(initialiser); ok {
		if err := in.Initialise(ctx); err != nil {
			return nil, err
		}
	}
	as, err := b.Admin(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := b.TokenService(ctx, st, st)
	if err != nil {
		return nil, err
	}
	s.tokens = ts
	s.onClose(func() { _ = ts.Close() })
	// From now on the loss of the revocations is detected too.
	rl, detectsLoss := ts.Revoked.(revocationLoser)
	if detectsLoss {
		if err := rl.Initialise(ctx); err != nil {
			return nil, err
		}
	}

	fa, err := c.buildForwardAuth(env, ts)
	if err != nil {
		return nil, err
	}
	s.forwardAuth.Store(fa)
	reg, metrics, err := newServeMetrics()
	if err != nil {
		return nil, err
	}
	// Logins resolve policies through the policy cache; admin API writes
	// go through its Writer, so the next login sees them.
	dc, err := newDegradedCounters(reg)
	if err != nil {
		return nil, err
	}
	ms := newMeteredStore(st, metrics, dc)
	pc, err := b.policyCache(ctx, cacheSource{ms, st}, reg)
	if err != nil {
		return nil, err
	}
	if err := pc.Start(ctx); err != nil {
		return nil, err
	}
	s.cache = pc
	s.onClose(func() { _ = pc.Close() })
	jsCache, err := b.JSCache(ctx)
	if err != nil {
		return nil, err
	}
	s.jsCache = jsCache
	checks := append([]hooks.ReadyCheck{keysCheck(ts, ts.keyStore)}, b.storeChecks(st)...)
	checks = append(checks, hooks.ReadyCheck{Name: "policy_cache", Check: pc.Check, Degrades: true})
	if detectsLoss {
		checks = append(checks, revocationsCheck(rl))
	}
	// The token endpoint finds store clients at the policy cache's
	// revision: one store read per client and revision.
	rs, err := b.ReplayStore(ctx)
	if err != nil {
		return nil, err
	}
	if s.exchanger, err = c.buildExchanger(env, ts, &exchangeStore{apps: st, revision: pc.Revision, replay: rs}); err != nil {
		return nil, err
	}
	disco := &oauth.DiscoveryHandler{Issuer: ts.Minter.Issuer(), Keys: ts.Keys}
	if s.exchanger != nil {
		disco.GrantTypes = s.exchanger.GrantTypes()
	}

	// One budget of unauthenticated bodies for every dialect and the OAuth
	// endpoints, kept across reloads (resized by hooks.body_budget).
	budget := hooks.NewBodyBudget(0)
	if err := budget.Register(reg); err != nil {
		return nil, err
	}
	routes := oauth.Endpoints{
		Introspect: &oauth.IntrospectHandler{Clients: ts.Clients, Introspector: ts.Introspector, Log: env.Log, Budget: budget},
		Revoke:     &oauth.RevokeHandler{Clients: ts.Clients, Revoker: ts.Introspector, Log: env.Log, Budget: budget},
		JWKS:       &oauth.JWKSHandler{Keys: ts.Keys},
		Discovery:  disco,
	}.Routes()
	if cfg.path != "" {
		// One replay state for the server's life: a reload must not let an
		// already received message through again.
		replays := login.NewReplayCaches(metrics)
		if rs != nil {
			replays = login.NewSharedReplayCaches(metrics, rs)
		}
		r, err := hooks.NewReloader(ctx, append(login.Routes(), hooks.Route{Pattern: oauth.PatternToken, Label: oauth.LabelOAuth}), s.hookBuilder(ms, pc, login.TokenMinter{Minter: ts.Minter}, ts.Introspector, metrics, replays, budget), env.Log, hooks.ReloaderOptions{Metrics: metrics})
		if err != nil {
			return nil, err
		}
		s.reloader = r
		s.onClose(func() {
			// After the server stopped: in-flight logins have ended, so
			// every pipeline can be closed.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Server.ShutdownTimeout+5*time.Second)
			defer cancel()
			if err := r.Close(cctx); err != nil {
				env.Log.Warn("close pipelines", "err", err)
			}
		})
		routes = append(routes, r.Routes()...)
		routes = append(routes, (&hooks.ReloadHandler{Reloader: r, Keys: as.Keys, Log: env.Log}).Route())
		checks = append(checks, hooks.ReadyCheck{Name: "rules", Check: r.Check})
	}
	// Mounted even when disabled (404), so a reload may turn it on.
	routes = append(routes, hooks.Route{Pattern: forwardauth.Pattern, Handler: &s.forwardAuth, Label: "forward-auth"})
	routes = append(routes, hooks.MetricsRoute(reg))
	adminRoutes, err := s.adminRoutes(ctx, env, invalidating(st, pc), as, dashboardDeps{signing: ts.Keys, rules: s.pipelineSteps, metrics: reg, tryLogin: s.tryLogin()}, c.Exchange.ConfigClientIDs())
	if err != nil {
		return nil, err
	}
	s.routes = metrics.Instrument(append(routes, adminRoutes...))
	mux, err := hooks.NewMux(s.routes, checks, env.Log)
	if err != nil {
		return nil, err
	}
	s.handler = mux
	if s.http, err = hooks.NewServer(c.Server.ServerConfig, mux, env.Log); err != nil {
		return nil, c.bad(keyPath{"server"}, err)
	}
	applyGC(c, env)
	return s, nil
}

// onClose registers f to run at Close, before everything registered
// earlier (the reverse order of opening).
func (s *Server) onClose(f func()) { s.closers = append([]func(){f}, s.closers...) }

// Handler is the server's handler (every route, instrumented), for tests
// that serve it themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// Store is the server's authorization store (writes through it bypass the
// policy cache; tests seed data with it before serving).
func (s *Server) Store() DataStore { return s.store }

// Tokens is the server's token service.
func (s *Server) Tokens() *TokenService { return s.tokens }

// Routes lists the mounted route patterns, sorted.
func (s *Server) Routes() []string { return hooks.RoutePatterns(s.routes) }

// served splits the mounted routes into those the configuration serves
// and the endpoints it leaves off — mounted all the same, so that a reload
// can turn them on, but answering 404 — each named with the key that turns
// it on.
func (s *Server) served() (routes, off []string) {
	idle := map[string]bool{}
	if s.reloader != nil {
		serving := s.reloader.Serving()
		for _, rt := range s.reloader.Routes() {
			if !slices.Contains(serving, rt.Pattern) {
				idle[rt.Pattern] = true
			}
		}
	}
	if !s.eff.ForwardAuth.Enabled {
		idle[forwardauth.Pattern] = true
	}
	for _, p := range s.Routes() {
		if !idle[p] {
			routes = append(routes, p)
		}
	}
	for _, k := range login.Kinds() {
		if !slices.ContainsFunc(k.Routes, func(rt login.Route) bool { return slices.Contains(routes, rt.Pattern) }) {
			off = append(off, fmt.Sprintf("%s (hooks.%s)", k.Name, kindSection(k)))
		}
	}
	if !slices.Contains(routes, oauth.PatternToken) {
		off = append(off, "token exchange (exchange.enabled)")
	}
	if idle[forwardauth.Pattern] {
		off = append(off, "forward-auth (forward_auth.enabled)")
	}
	return routes, off
}

// kindSection is the key of a dialect's section under hooks: the first key
// of its example.
func kindSection(k login.Kind) string {
	key, _, _ := strings.Cut(strings.TrimSpace(k.Example), ":")
	return key
}

// DefaultAddr is server.addr's default.
const DefaultAddr = "127.0.0.1:8080"

// Run listens on server.addr and serves until ctx ends (see Serve).
func (s *Server) Run(ctx context.Context) error {
	addr := s.eff.Server.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then stops accepting and lets
// requests in flight finish (server.shutdown_timeout). It re-reads the
// signing keys every tokens.key_reload meanwhile.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	// Shutting down abandons a reload in progress: http.Server.Shutdown
	// would otherwise wait for the POST /api/reload running it.
	defer context.AfterFunc(ctx, s.stopBuilds)()
	go s.tokens.Keys.Maintain(mctx, s.tokens.KeyReload)
	s.announceDevSignIn(ctx, ln)
	if s.dashboard != nil {
		go s.dashboard.SampleRules(mctx, time.Minute)
	}
	served, off := s.served()
	s.env.Log.InfoContext(ctx, "claimsmith serve", "issuer", s.tokens.Minter.Issuer(), "routes", served,
		"introspection_clients", len(s.eff.Tokens.Introspection.Clients))
	if len(off) > 0 {
		s.env.Log.InfoContext(ctx, "not configured, answering 404: add the section named (see claimsmith serve -h) and reload",
			"off", strings.Join(off, ", "))
	}
	return s.http.Serve(ctx, ln)
}

// Addr is the address Serve listens on once it does; it blocks until then
// or until ctx ends.
func (s *Server) Addr(ctx context.Context) (net.Addr, error) { return s.http.Addr(ctx) }

// ErrNoConfigFile is Reload's answer for a server built without a file.
var ErrNoConfigFile = errors.New("no configuration file to reload")

// Reload re-reads the configuration file and swaps in its pipeline and
// hooks (see hooks.Reloader); a file that fails is rejected and the running
// configuration keeps serving.
func (s *Server) Reload(ctx context.Context) (hooks.ReloadResult, error) {
	if s.reloader == nil {
		return hooks.ReloadResult{}, ErrNoConfigFile
	}
	return s.reloader.Reload(ctx)
}

// Close releases what Build opened: the pipelines (after the last login on
// them), the policy cache, the token service, the store and its lock, the
// Redis clients.
func (s *Server) Close() error {
	s.stopBuilds() // first: closing the reloader waits for a reload running
	for _, f := range s.closers {
		f()
	}
	s.closers = nil
	return nil
}

// hookBuilder builds the login pipeline (policies through resolver, the
// policy cache) and the IdP-facing handlers the hooks section asks for.
// The first build uses the configuration Build was given; every later one
// (SIGHUP, POST /api/reload) reads the file again and validates it whole.
// A file without a hooks section still builds its pipeline, so a bad rule
// is refused, then releases it: its dialect routes answer 404 until a
// reload adds the section.
func (s *Server) hookBuilder(st PipelineStore, resolver authz.PolicyResolver, minter login.Minter, intro *token.Introspector, m *hooks.Metrics, replays *login.ReplayCaches, budget *hooks.BodyBudget) hooks.BuildFunc {
	// build has no side effects: a reload abandoned at its deadline may
	// still finish, and must then change nothing.
	build := func(ctx context.Context, reload bool) (b builtHooks, err error) {
		cfg := s.cfg
		if reload {
			lc, err := Load(s.cfg.path)
			if err != nil {
				return b, err
			}
			if err := s.overridesOf(lc).Validate(ctx, s.env); err != nil {
				return b, err
			}
			warnRestartOnly(ctx, s.env, s.cfg, lc)
			cfg = lc
		}
		b.set, b.info, err = buildHookSet(ctx, cfg, s.env, st, PipelineOptions{Resolver: resolver, JSCache: s.jsCache}, login.Deps{
			Resolver: resolver, Settings: st, Minter: minter, Replays: replays, BodyBudget: budget,
		}, m, s.exchanger)
		if err != nil || !reload {
			return b, err
		}
		// forward_auth reloads with the pipeline: both build, or neither
		// is swapped in.
		if b.fa, err = cfg.buildForwardAuth(s.env, s.tokens); err != nil {
			b.release()
			return builtHooks{}, err
		}
		b.reload = true
		return b, nil
	}
	first := true
	return func(ctx context.Context) (*hooks.HookSet, error) {
		var b builtHooks
		var err error
		if first {
			first = false
			b, err = build(ctx, false)
		} else {
			b, err = s.reloadWithin(ctx, build)
		}
		if err != nil {
			return b.set, err
		}
		if b.reload {
			s.forwardAuth.Store(b.fa)
		}
		steps := b.info.steps
		s.steps.Store(&steps)
		// Live introspection replays the serving pipeline's login rules.
		intro.UseLoginRules(b.info.loginRules)
		return b.set, nil
	}
}

// builtHooks is what one build of the hooks makes.
type builtHooks struct {
	set  *hooks.HookSet
	info pipelineInfo
	fa   *forwardauth.Handler // reloads only
	// reload: fa replaces the serving forward_auth (nil: turned off).
	reload bool
}

func (b builtHooks) release() {
	if b.set != nil && b.set.Release != nil {
		b.set.Release()
	}
}

// reloadWithin runs a reload's build under server.reload_timeout, and stops
// it when the server shuts down. A build that does not return in time (a
// module's initialiser, a store call that ignores its context) is
// abandoned: the reload is rejected at once, so the reloader's lock is
// released and later reloads run, and whatever the build still makes is
// released when it ends.
func (s *Server) reloadWithin(ctx context.Context, build func(context.Context, bool) (builtHooks, error)) (builtHooks, error) {
	timeout := s.eff.Server.reloadTimeout()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(s.builds, cancel)
	defer stop()
	type result struct {
		b   builtHooks
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := build(rctx, true)
		done <- result{b, err}
	}()
	var res result
	select {
	case res = <-done:
		if res.err == nil || rctx.Err() == nil {
			return res.b, res.err
		}
	case <-rctx.Done():
		go func() {
			if late := <-done; late.err == nil {
				late.b.release()
			}
		}()
	}
	switch {
	case s.builds.Err() != nil:
		return builtHooks{}, fmt.Errorf("%w: the server is shutting down; reload abandoned", runtime.ErrUnavailable)
	case ctx.Err() != nil:
		return builtHooks{}, fmt.Errorf("reload abandoned: %w", ctx.Err())
	}
	msg := fmt.Sprintf("the configuration was not built within server.reload_timeout (%v); reload abandoned", timeout)
	if res.err != nil {
		// %v: the build's own error (a module's, matching ErrInvalid) must
		// not decide the answer; which of the two came first is chance.
		return builtHooks{}, fmt.Errorf("%w: %s: %v", runtime.ErrTimeout, msg, res.err)
	}
	return builtHooks{}, fmt.Errorf("%w: %s", runtime.ErrTimeout, msg)
}

func (s *Server) overridesOf(c *Config) *Config {
	return Overrides{Addr: s.eff.Server.Addr, Issuer: s.eff.Tokens.Issuer, TLSCertFile: s.eff.Server.TLSCertFile, TLSKeyFile: s.eff.Server.TLSKeyFile}.apply(c)
}

// buildHookSet is the part of a server a reload rebuilds, and what Check
// builds: the pipeline and the dialect handlers around it. info describes
// the pipeline (it may already be released).
//
// ex, when not nil, is the token endpoint: it is bound to this set's
// pipeline, which then serves even without a hooks section.
func buildHookSet(ctx context.Context, cfg *Config, env Env, st PipelineStore, popt PipelineOptions, deps login.Deps, m *hooks.Metrics, ex *exchange.Exchanger) (_ *hooks.HookSet, info pipelineInfo, _ error) {
	p, err := cfg.BuildPipeline(ctx, env, st, popt)
	if err != nil {
		return nil, info, err
	}
	info = pipelineInfo{steps: p.Steps(), namespace: p.Namespace(), loginRules: p.LoginRules()}
	release := func() {
		if err := p.Close(); err != nil {
			env.Log.Warn("release pipeline", "error", err)
		}
	}
	set := &hooks.HookSet{Handlers: map[string]http.Handler{}}
	for _, step := range p.Steps() {
		set.Rules = append(set.Rules, step.Name)
	}
	set.DryRun = p.DryRun
	var enr runtime.Enricher = p
	if m != nil {
		enr = m.Enricher(p)
	}
	if cfg.Hooks == nil {
		if ex == nil {
			release()
			set.DryRun = nil
			return set, info, nil
		}
		exchangeRoute(set, ex, enr, env, deps.BodyBudget)
		set.Release = release
		return set, info, nil
	}
	deps.Enricher = enr
	exchangeRoute(set, ex, enr, env, deps.BodyBudget)
	deps.Namespace = p.Namespace()
	d, err := cfg.buildDialects(ctx, env, deps)
	if err != nil {
		release()
		return nil, info, err
	}
	set.MaxBody, set.Release = cfg.Hooks.MaxBody, release
	d.Register(func(pattern string, h http.Handler) { set.Handlers[pattern] = h })
	return set, info, nil
}

// pipelineInfo is what a report says of a built pipeline.
type pipelineInfo struct {
	steps      []runtime.StepInfo
	namespace  string
	loginRules runtime.LoginRules
}

// warnRestartOnly logs the sections a reload does not apply: everything
// but pipeline and hooks (the listener, TLS, keys, introspection clients,
// store, Redis and cache are set up once at start), and the namespace the
// token side uses.
func warnRestartOnly(ctx context.Context, env Env, start, cur *Config) {
	var changed []string
	old, now := reflect.ValueOf(*start), reflect.ValueOf(*cur)
	for i := range old.NumField() {
		f := old.Type().Field(i)
		if !f.IsExported() || f.Name == "Pipeline" || f.Name == "Hooks" || f.Name == "ForwardAuth" {
			continue
		}
		if !reflect.DeepEqual(old.Field(i).Interface(), now.Field(i).Interface()) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			changed = append(changed, name)
		}
	}
	if start.Pipeline.Namespace != cur.Pipeline.Namespace {
		changed = append(changed, "pipeline.namespace (for introspection; logins use the new one)")
	}
	if len(changed) > 0 {
		env.Log.WarnContext(ctx, "configuration reload: these sections changed and take effect only at restart",
			"file", cur.path, "sections", changed)
	}
}

// cacheSource is what the policy cache wraps: policies through the metered
// store, the revision from the store itself.
type cacheSource struct {
	authz.PolicyResolver
	st authz.Reader
}

func (s cacheSource) Revision(ctx context.Context) (uint64, error) { return s.st.Revision(ctx) }

// Epoch is the store's epoch (cache.Epocher), "" for a store without one.
func (s cacheSource) Epoch() string {
	if e, ok := s.st.(cache.Epocher); ok {
		return e.Epoch()
	}
	return ""
}

// adminRoutes builds the admin API (/api/…) over the server's store, with
// the keys and audit log of the configured backend. The audit intents a
// crashed predecessor left are settled first, so the audit log is complete
// before the API serves it.
func (s *Server) adminRoutes(ctx context.Context, env Env, st DataStore, as AdminStores, deps dashboardDeps, configClients []string) ([]hooks.Route, error) {
	svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: as.Audit, Log: env.Log})
	if err != nil {
		return nil, err
	}
	if err := svc.Reconcile(ctx); err != nil {
		return nil, err
	}
	api, err := adminapi.New(adminapi.Config{Service: svc, Keys: as.Keys, Profiles: st, Log: env.Log, ConfigClients: configClients})
	if err != nil {
		return nil, err
	}
	routes := api.ServerRoutes()
	// The dashboard (/admin/) writes through the same service. Turned off,
	// nothing is mounted there: /admin/ answers 404.
	if dc := s.eff.Admin.Dashboard; dc.on() {
		if s.dashboard, err = newDashboard(env, dc, svc, as, deps); err != nil {
			return nil, err
		}
		routes = append(routes, dashboardRoute(s.dashboard))
	}
	return hooks.WithLabel("admin", routes...), nil
}

// policyCache builds the policy cache over src from the cache section:
// near cache always, the Redis cache and pub/sub when the cache has a
// Redis. The caller starts and closes it.
func (b *Backends) policyCache(ctx context.Context, src cache.Source, reg prometheus.Registerer) (*cache.Cache, error) {
	cc, prefix, err := b.cacheClient(ctx)
	if err != nil {
		return nil, err
	}
	c := b.cfg.Cache
	return cache.New(src, cache.Options{Client: cc, Prefix: prefix, NearSize: c.NearSize, NearTTL: c.NearTTL,
		RedisTTL: c.RedisTTL, OpTimeout: c.OpTimeout, PollInterval: c.PollInterval, Logger: b.env.Log, Registerer: reg})
}

// JSCache is the JavaScript rules' api.cache for a server's life: in the
// policy cache's Redis when it has one, so every node shares it (Auth0's
// limits hold across nodes), else in-process.
func (b *Backends) JSCache(ctx context.Context) (js.Cache, error) {
	cc, prefix, err := b.cacheClient(ctx)
	if err != nil {
		return nil, err
	}
	if cc == nil {
		return js.NewMemoryCache(b.env.Now), nil
	}
	return js.NewRedisCache(cc, js.RedisCacheOptions{Prefix: prefix, Now: b.env.Now, OpTimeout: b.cfg.Cache.OpTimeout}), nil
}

// StoreCheckTimeout bounds the store's readiness check: go-redis' retries
// against a dead server take about 1.7 s, longer than probes wait.
const StoreCheckTimeout = 500 * time.Millisecond

// storeCheck is the readiness check of the store. With the Redis store and
// last_snapshot, logins keep being answered while Redis is away (within
// max_staleness), so an unreachable store degrades instead of failing.
func (b *Backends) storeCheck(st authz.Reader) hooks.ReadyCheck {
	return hooks.ReadyCheck{
		Name: "store",
		Check: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, StoreCheckTimeout)
			defer cancel()
			_, err := st.Revision(ctx)
			return err
		},
		Degrades: b.kind.degrades(b),
	}
}

// Report is what Check built.
type Report struct {
	Steps     []runtime.StepInfo
	Namespace string
	// Routes are the hook routes the configuration serves.
	Routes []string
	// Env lists the environment variables the configuration reads.
	Env []EnvVar
}

// Check builds what Build builds, refusing exactly what Build refuses, but
// without side effects: no owner lock, no key generated, no listener, no
// background work, no profile written. The store is read as it is (an
// empty in-memory store when the file backend's data dir does not exist
// yet); a Redis store must be reachable. The report lists the pipeline and
// the environment variables the configuration reads, also on failure.
func Check(ctx context.Context, cfg *Config, opt Options) (*Report, error) {
	env := opt.Env.withDefaults()
	c := opt.Overrides.apply(cfg)
	rep := &Report{Env: c.EnvVars(env.Getenv)}
	if err := c.Validate(ctx, env); err != nil {
		return rep, err
	}
	b, err := OpenBackends(c, env)
	if err != nil {
		return rep, err
	}
	defer b.Close()
	var st PipelineStore
	if _, err := os.Stat(env.DataDir); !b.Shared() && errors.Is(err, fs.ErrNotExist) {
		st = memory.New(memory.Options{})
	} else {
		ds, err := b.Store(ctx, true)
		if err != nil {
			return rep, err
		}
		defer ds.Close()
		st = ds
	}
	set, info, err := buildHookSet(ctx, c, env, st, PipelineOptions{DryRun: true}, login.Deps{Resolver: st, Settings: st}, nil, nil)
	if err != nil {
		return rep, err
	}
	if set.Release != nil {
		set.Release()
	}
	for p := range set.Handlers {
		rep.Routes = append(rep.Routes, p)
	}
	if c.ForwardAuth.Enabled {
		rep.Routes = append(rep.Routes, forwardauth.Pattern)
	}
	if c.Exchange.Enabled {
		rep.Routes = append(rep.Routes, oauth.PatternToken)
	}
	sort.Strings(rep.Routes)
	// The TLS pair was loaded by Validate; the listener is not opened.
	rep.Steps, rep.Namespace = info.steps, info.namespace
	return rep, nil
}
