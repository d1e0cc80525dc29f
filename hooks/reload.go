package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
)

// PatternReload is the admin endpoint that reloads the configuration.
const PatternReload = "POST /api/reload"

// HookSet is one generation of the IdP-facing handlers: a pipeline built
// from one reading of the configuration and the dialect handlers around it.
type HookSet struct {
	// Handlers by route pattern; a pattern of the Reloader's routes missing
	// here answers 404 while this set serves.
	Handlers map[string]http.Handler
	// MaxBody caps request bodies (hooks.max_body; 0: DefaultMaxBody).
	MaxBody int64
	// Rules names the pipeline's steps, for logs and the reload answer.
	Rules []string
	// Release frees the pipeline (rules, wasm instances). It is called once,
	// after the set stopped serving and its last request ended.
	Release func()
	// DryRun runs an event through this set's pipeline without persisting
	// anything (runtime.Pipeline.DryRun); nil when the set has no pipeline.
	DryRun func(ctx context.Context, ev *runtime.Event) (*runtime.Result, error)
}

// BuildFunc reads the configuration and builds a complete HookSet (every
// rule constructed, every WebAssembly module compiled) or fails without
// side effects, naming the file, line and key.
type BuildFunc func(ctx context.Context) (*HookSet, error)

// generation is a HookSet with its reference count. The Reloader holds one
// reference while the set is current, each request one while it runs; the
// set is released when the count drops to zero, so a login that started on
// a generation finishes on it.
type generation struct {
	id       uint64
	set      *HookSet
	byRoute  []http.Handler // indexed like Reloader.patterns
	maxBody  int64
	refs     atomic.Int64
	released chan struct{}
	closeWG  *sync.WaitGroup
}

// acquire takes a reference unless the generation is already drained (a
// drained generation is never revived).
func (g *generation) acquire() bool {
	for {
		n := g.refs.Load()
		if n <= 0 {
			return false
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (g *generation) release() {
	if g.refs.Add(-1) == 0 {
		// Off the request's goroutine: closing wasm pools must not delay
		// the last response of the old generation.
		go func() {
			defer g.closeWG.Done()
			if g.set.Release != nil {
				g.set.Release()
			}
			close(g.released)
		}()
	}
}

// ReloadResult describes a successful reload.
type ReloadResult struct {
	Generation uint64   `json:"generation"`
	Rules      []string `json:"rules"`
	Routes     []string `json:"routes"`
}

// Reloader serves the current HookSet and swaps in a new one atomically:
// the new set is built completely before it replaces the old one; a build
// failure leaves the old one serving. Create it with NewReloader.
type Reloader struct {
	build    BuildFunc
	patterns []string // of routes, indexed like generation.byRoute
	labels   []string
	log      *slog.Logger
	metrics  *Metrics // nil: no metrics
	now      func() time.Time

	cur     atomic.Pointer[generation]
	mu      sync.Mutex // one reload at a time
	nextID  uint64     // guarded by mu
	closeWG sync.WaitGroup
	closed  atomic.Bool
}

// ReloaderOptions are NewReloader's optional dependencies.
type ReloaderOptions struct {
	Metrics *Metrics
	Now     func() time.Time
}

// NewReloader serves routes (pattern and label; their handlers are ignored)
// with the handlers of the generation build makes: every route a
// generation may serve is mounted once, so that a reload can turn one on or
// off without rebuilding the server's mux. It builds the first generation;
// its failure is returned.
func NewReloader(ctx context.Context, routes []Route, build BuildFunc, log *slog.Logger, opt ReloaderOptions) (*Reloader, error) {
	if build == nil {
		return nil, fmt.Errorf("%w: reloader: no build function", runtime.ErrInvalid)
	}
	var patterns, labels []string
	for _, rt := range routes {
		patterns = append(patterns, rt.Pattern)
		labels = append(labels, rt.Label)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Reloader{build: build, patterns: patterns, labels: labels, log: log, metrics: opt.Metrics, now: opt.Now}
	set, err := build(ctx)
	if err != nil {
		return nil, err
	}
	r.swap(orEmpty(set))
	return r, nil
}

// Routes are the forwarding routes to mount on the server, one per route
// given to NewReloader. Their body limit is applied per generation.
func (r *Reloader) Routes() []Route {
	out := make([]Route, len(r.patterns))
	for i, p := range r.patterns {
		// No limit from the mux: forward applies the generation's.
		out[i] = Route{Pattern: p, Handler: &forward{r: r, idx: i}, MaxBody: -1, Label: r.labels[i]}
	}
	return out
}

// Generation is the id of the serving generation (1 after NewReloader).
func (r *Reloader) Generation() uint64 {
	if g := r.cur.Load(); g != nil {
		return g.id
	}
	return 0
}

// Check is the readiness check "rules": a compiled pipeline is serving.
func (r *Reloader) Check(context.Context) error {
	if r.closed.Load() || r.cur.Load() == nil {
		return fmt.Errorf("%w: no compiled pipeline is serving", runtime.ErrUnavailable)
	}
	return nil
}

// Reload builds a new generation and swaps it in. A failed build is
// logged, counted and returned (matching ErrInvalid for a bad
// configuration) and the serving generation is kept. A reload started while
// another runs waits for it; TryReload refuses instead.
func (r *Reloader) Reload(ctx context.Context) (ReloadResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(ctx)
}

// ErrReloadInProgress is TryReload's answer while another reload runs.
var ErrReloadInProgress = fmt.Errorf("%w: a configuration reload is already in progress", runtime.ErrConflict)

// TryReload is Reload, refused with ErrReloadInProgress (409) while another
// reload runs.
func (r *Reloader) TryReload(ctx context.Context) (ReloadResult, error) {
	if !r.mu.TryLock() {
		return ReloadResult{}, ErrReloadInProgress
	}
	defer r.mu.Unlock()
	return r.reloadLocked(ctx)
}

func (r *Reloader) reloadLocked(ctx context.Context) (ReloadResult, error) {
	if r.closed.Load() {
		return ReloadResult{}, fmt.Errorf("%w: the server is shutting down", runtime.ErrUnavailable)
	}
	t0 := r.now()
	set, err := r.build(ctx)
	if err != nil {
		r.metrics.reloaded(false, 0, t0)
		r.log.ErrorContext(ctx, "configuration reload rejected; the previous configuration keeps serving",
			"generation", r.Generation(), "err", err)
		if !errors.Is(err, runtime.ErrInvalid) {
			// Not a bad file but a failed build all the same (a module
			// that cannot be read, …): the endpoint answers 409, not 500.
			err = fmt.Errorf("%w (%w)", err, runtime.ErrConflict)
		}
		return ReloadResult{}, fmt.Errorf("reload rejected, generation %d keeps serving: %w", r.Generation(), err)
	}
	set = orEmpty(set)
	g := r.swap(set)
	res := ReloadResult{Generation: g.id, Rules: set.Rules, Routes: r.routesOf(g)}
	r.log.InfoContext(ctx, "configuration reloaded", "generation", g.id, "rules", set.Rules,
		"routes", res.Routes, "took", r.now().Sub(t0).Round(time.Microsecond))
	return res, nil
}

// orEmpty turns a nil set (nothing configured) into an empty one.
func orEmpty(set *HookSet) *HookSet {
	if set == nil {
		return &HookSet{}
	}
	return set
}

// swap makes set current and drops the Reloader's reference to the old
// generation; the old one is released when its last request ends.
func (r *Reloader) swap(set *HookSet) *generation {
	r.nextID++
	g := &generation{id: r.nextID, set: set, maxBody: set.MaxBody, released: make(chan struct{}), closeWG: &r.closeWG,
		byRoute: make([]http.Handler, len(r.patterns))}
	for i, p := range r.patterns {
		g.byRoute[i] = set.Handlers[p]
	}
	g.refs.Store(1)
	r.closeWG.Add(1)
	old := r.cur.Swap(g)
	r.metrics.reloaded(true, g.id, r.now())
	if old != nil {
		old.release()
	}
	return g
}

// Serving lists the patterns of the serving generation's handlers, in
// route order; the other mounted routes answer 404 until a reload adds
// them.
func (r *Reloader) Serving() []string {
	g := r.cur.Load()
	if g == nil {
		return nil
	}
	return r.routesOf(g)
}

func (r *Reloader) routesOf(g *generation) []string {
	var out []string
	for i, h := range g.byRoute {
		if h != nil {
			out = append(out, r.patterns[i])
		}
	}
	return out
}

// acquire returns the current generation with a reference taken.
func (r *Reloader) acquire() *generation {
	for {
		g := r.cur.Load()
		if g == nil {
			return nil
		}
		if g.acquire() {
			return g
		}
		// Drained between Load and acquire: a newer one is current.
	}
}

// ErrNoPipeline is DryRun's answer while no pipeline serves logins.
var ErrNoPipeline = fmt.Errorf("%w: no login pipeline is serving (the configuration has no hooks section, or the server is shutting down)", runtime.ErrUnavailable)

// DryRun runs ev through the serving generation's pipeline — the one logins
// use now — without persisting anything, outside the hooks' metrics and
// replay protection: what a login would get, for an operator to see.
func (r *Reloader) DryRun(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
	g := r.acquire()
	if g == nil {
		return nil, ErrNoPipeline
	}
	defer g.release()
	if g.set.DryRun == nil {
		return nil, ErrNoPipeline
	}
	return g.set.DryRun(ctx, ev)
}

// Close stops serving: the current generation is released once its
// requests end (call it after the HTTP server shut down). It waits for every
// generation's Release until ctx ends.
func (r *Reloader) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed.Store(true)
	old := r.cur.Swap(nil)
	r.mu.Unlock()
	if old != nil {
		old.release()
	}
	done := make(chan struct{})
	go func() { r.closeWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("reloader: pipelines still in use: %w", ctx.Err())
	}
}

// forward serves one pattern with the current generation's handler.
type forward struct {
	r   *Reloader
	idx int
}

func (f *forward) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	g := f.r.acquire()
	if g == nil {
		WriteError(w, fmt.Errorf("%w: the server is shutting down", runtime.ErrUnavailable))
		return
	}
	defer g.release()
	h := g.byRoute[f.idx]
	if h == nil {
		WriteError(w, fmt.Errorf("%s is not configured (hooks section of the configuration): %w", f.r.patterns[f.idx], runtime.ErrNotFound))
		return
	}
	if err := LimitBody(w, req, g.maxBody); err != nil {
		WriteError(w, err)
		return
	}
	h.ServeHTTP(w, req)
}

// ReloadHandler is POST /api/reload: an admin key with the write:authz
// scope reloads the configuration. 200 with the new generation; 400 with
// the reason when the new configuration is rejected (the old one keeps
// serving); 409 while another reload runs; 401/403 for a missing, wrong or
// under-scoped key.
type ReloadHandler struct {
	Reloader *Reloader
	Keys     AdminKeys // the admin API's key store
	Log      *slog.Logger
}

// Route is POST /api/reload served by h.
func (h *ReloadHandler) Route() Route {
	return Route{Pattern: PatternReload, Handler: h, Label: LabelOps}
}

func (h *ReloadHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The scope of authorization writes: a reload changes what logins are
	// granted, as they do.
	key, err := AuthenticateAdmin(r, h.Keys, admin.ScopeWrite)
	if err != nil {
		if errors.Is(err, runtime.ErrUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="claimsmith-admin"`)
		}
		WriteError(w, err)
		return
	}
	if h.Log != nil {
		h.Log.InfoContext(r.Context(), "configuration reload requested", "key", key.Name)
	}
	res, err := h.Reloader.TryReload(r.Context())
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, res)
}
