package js

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
	"github.com/claimsmith/claimsmith/runtime/wasm"
)

// engineGz is the built engine module (engine/, `make js-engine`), and
// engineSum the SHA-256 of the module decompressed, in hex.
var (
	//go:embed engine.wasm.gz
	engineGz []byte
	//go:embed engine.wasm.sha256
	engineSum string
)

// EngineModule returns the embedded engine module, decompressed.
func EngineModule() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(engineGz))
	if err != nil {
		return nil, fmt.Errorf("embedded JavaScript engine: %w", err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("embedded JavaScript engine: %w", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != strings.TrimSpace(engineSum) {
		return nil, fmt.Errorf("embedded JavaScript engine: decompressed module does not match engine.wasm.sha256")
	}
	return b, nil
}

// engineModule is EngineModule through the cache directory: the
// decompressed module is kept there (named by its hash), as the compiled
// code is by the loader. Reading and checking it costs a third of
// decompressing it again at every start. A missing, damaged or unwritable
// copy only costs that time.
func (e *Engine) engineModule() ([]byte, error) {
	if e.opts.CacheDir == "" {
		return EngineModule()
	}
	sum := strings.TrimSpace(engineSum)
	path := filepath.Join(e.opts.CacheDir, engineFile())
	if b, err := os.ReadFile(path); err == nil {
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) == sum {
			e.touchEngineFile(path)
			return b, nil
		}
	}
	b, err := EngineModule()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, b); err != nil {
		e.log.Warn("cannot keep the decompressed JavaScript engine; decompressing at every start", "path", path, "err", err)
	}
	return b, nil
}

// writeFileAtomic keeps the decompressed engine: no sync (it is checked by
// its hash when read back), but never a torn file for another process.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsx.ReplaceFileNoSync(path, b, 0o600)
}

// Defaults.
const (
	DefaultTimeout     = 500 * time.Millisecond
	DefaultMemoryBytes = 128 << 20
	// DefaultInitTimeout bounds making one engine instance (the Go runtime
	// and goja start, the prelude): 50 ms on an idle machine.
	DefaultInitTimeout = 10 * time.Second
	// MaxSourceBytes caps a rule file (Auth0: 100 kB per Action; bundles
	// of pure npm modules are larger).
	MaxSourceBytes = 4 << 20
	// engineTimeout is the engine pool's own call bound; each call has its
	// rule's timeout.
	engineTimeout = time.Minute
	// DefaultGuestGCPercent: see Options.GuestGCPercent.
	DefaultGuestGCPercent = 200
)

// guestMemoryLimit is the Go memory limit of an engine instance with a
// memory cap: three quarters of it, so the guest's collector works harder
// before linear memory grows into the cap (an out-of-memory trap), while a
// script whose live data outgrows the cap still fails.
func guestMemoryLimit(capBytes uint64) uint64 { return capBytes / 4 * 3 }

// Options configure an Engine. Zero values pick the defaults.
type Options struct {
	Logger *slog.Logger
	// Authz serves runtime/wasm's authz host functions (unused by the
	// compatibility layer today, available to the engine).
	Authz wasm.PolicyResolver
	// Now is the scripts' wall clock (`new Date()`); `claimsmith test
	// --now` pins it. Default time.Now.
	Now func() time.Time
	// CacheDir keeps the compiled engine on disk. Default:
	// $XDG_CACHE_HOME/claimsmith (os.UserCacheDir); "-" disables it.
	CacheDir string
	// PoolSize is the number of engine instances per pool (default
	// GOMAXPROCS).
	PoolSize int
	// MaxAbandoned is passed to runtime/wasm (its circuit breaker).
	MaxAbandoned int
	// InitTimeout bounds making one engine instance.
	InitTimeout time.Duration
	// LookupEnv reads the secrets' environment variables (default
	// os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Cache backs api.cache (default: in-process, per Engine).
	Cache Cache
	// GuestGCPercent is the engine instances' GOGC (default
	// DefaultGuestGCPercent). Their collector runs on the login's own
	// thread: higher makes collections rarer and instances larger.
	GuestGCPercent int
}

// Engine loads JavaScript rules (runtime.ModuleLoader). Every rule it
// loaded shares one engine pool per memory setting. Close it after the last
// rule was cleaned up.
type Engine struct {
	opts   Options
	log    *slog.Logger
	loader *wasm.Loader
	cache  Cache

	mu      sync.Mutex
	pools   map[uint64]*pool
	defs    map[string]*ruleDef
	nextID  atomic.Uint64
	closing bool
}

var _ runtime.ModuleLoader = (*Engine)(nil)

type pool struct {
	rule *wasm.Rule
}

// ruleDef is what the guest's js_rule host function answers.
type ruleDef struct {
	Name          string            `json:"name"`
	Source        string            `json:"source"`
	Style         Style             `json:"style"`
	Configuration map[string]string `json:"configuration"`
	Secrets       map[string]string `json:"secrets"`
}

// New returns an engine; the engine module is compiled when the first rule
// is loaded.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = DefaultInitTimeout
	}
	if opts.GuestGCPercent == 0 {
		opts.GuestGCPercent = DefaultGuestGCPercent
	}
	switch opts.CacheDir {
	case "-":
		opts.CacheDir = ""
	case "":
		if base, err := os.UserCacheDir(); err == nil {
			opts.CacheDir = filepath.Join(base, "claimsmith")
		}
	}
	c := opts.Cache
	if c == nil {
		c = NewMemoryCache(opts.Now)
	}
	return &Engine{
		opts:  opts,
		log:   opts.Logger,
		cache: c,
		loader: wasm.NewLoader(wasm.Options{
			Logger: opts.Logger, Authz: opts.Authz, Now: opts.Now, CacheDir: opts.CacheDir, CacheKeep: []string{engineFile()},
			MaxAbandoned: opts.MaxAbandoned, InitTimeout: opts.InitTimeout,
		}),
		pools: map[uint64]*pool{},
		defs:  map[string]*ruleDef{},
	}
}

// Close closes the engine pools and releases the compilation cache.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closing = true
	pools := e.pools
	e.pools = map[uint64]*pool{}
	e.mu.Unlock()
	var errs []error
	for _, p := range pools {
		errs = append(errs, p.rule.Cleanup())
	}
	return errors.Join(append(errs, e.loader.Close(ctx))...)
}

// LoadError is a JavaScript rule that could not be loaded: it names the rule
// and the file. It matches runtime.ErrInvalid (runtime.ErrNotFound for a
// missing file, runtime.ErrTimeout when the engine could not start in time).
type LoadError struct {
	Rule, Path, Reason string
	Err                error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("js rule %q: %s: %s", e.Rule, e.Path, e.Reason)
}

// Unwrap returns the cause.
func (e *LoadError) Unwrap() error { return e.Err }

// Is reports runtime.ErrInvalid unless the cause is a missing file.
func (e *LoadError) Is(target error) bool {
	return target == runtime.ErrInvalid && !errors.Is(e.Err, runtime.ErrNotFound) && !errors.Is(e.Err, runtime.ErrTimeout)
}

// ErrUnsupportedAPI marks a rule using an Auth0 API claimsmith cannot offer.
var ErrUnsupportedAPI = errors.New("unsupported Auth0 API")

// LoadModule reads spec.Path (a .js file), checks it (style, unsupported
// APIs, syntax) and returns a rule served by the engine pool.
func (e *Engine) LoadModule(ctx context.Context, spec runtime.ModuleSpec) (runtime.Rule, error) {
	fail := func(err error, format string, args ...any) error {
		return &LoadError{Rule: spec.Name, Path: spec.Path, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	if spec.Name == "" {
		return nil, fail(runtime.ErrInvalid, "the rule has no name")
	}
	if len(spec.AllowedHosts) > 0 {
		return nil, fail(runtime.ErrInvalid, "allowed_hosts: JavaScript rules get no network")
	}
	src, err := readSource(spec.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fail(fmt.Errorf("%w: %w", runtime.ErrNotFound, err), "no such file")
		}
		return nil, fail(err, "%v", err)
	}
	rep, err := Analyze(src)
	if err != nil {
		return nil, fail(fmt.Errorf("%w: %w", runtime.ErrInvalid, err), "%v", err)
	}
	if bad := rep.Unsupported(); len(bad) > 0 {
		u := bad[0]
		return nil, fail(fmt.Errorf("%w: %s", ErrUnsupportedAPI, u.API), "line %d: %s is not supported: %s", u.Line, u.API, u.Note)
	}
	secrets := make(map[string]string, len(spec.Secrets))
	for _, name := range spec.Secrets {
		v, ok := e.opts.LookupEnv(name)
		if !ok {
			return nil, fail(runtime.ErrInvalid, "secret %s: the environment variable is not set", name)
		}
		secrets[name] = v
	}
	conf := make(map[string]string, len(spec.Config)+len(secrets))
	for k, v := range spec.Config {
		conf[k] = v
	}
	// Rules read secrets and settings from one `configuration` object, as
	// Auth0's rule settings did.
	for k, v := range secrets {
		conf[k] = v
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	mem := spec.MemoryBytes
	if mem == 0 {
		mem = DefaultMemoryBytes
	}
	id := fmt.Sprintf("%s#%d", spec.Name, e.nextID.Add(1))
	def := &ruleDef{Name: spec.Path, Source: src, Style: rep.Style, Configuration: conf, Secrets: secrets}

	e.mu.Lock()
	e.defs[id] = def
	e.mu.Unlock()
	p, err := e.acquire(ctx, mem, spec.PoolSize)
	if err != nil {
		e.forget(id)
		return nil, fail(err, "%v", err)
	}
	r := &Rule{name: spec.Name, id: id, path: spec.Path, style: rep.Style, timeout: timeout, engine: e, pool: p}
	// Compile it now on one instance: syntax errors and a module that does
	// not export a handler are load errors, not login failures.
	var out runtime.Commands
	check := &runtime.Event{Trigger: runtime.TriggerPostLogin}
	if err := p.rule.Call(ctx, check, callInput{Rule: id, Check: true}, max(timeout, 5*time.Second), &out); err != nil {
		_ = r.Cleanup()
		return nil, fail(err, "%v", cause(err))
	}
	e.log.Info("js rule loaded", "rule", spec.Name, "path", spec.Path, "style", rep.Style, "bytes", len(src))
	return r, nil
}

// cause strips the engine pool's RuleError wrapper.
func cause(err error) error {
	var re *runtime.RuleError
	if errors.As(err, &re) {
		return re.Cause
	}
	return err
}

func readSource(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return "", fmt.Errorf("%w: is a directory, not a .js file", runtime.ErrInvalid)
	}
	if st.Size() > MaxSourceBytes {
		return "", fmt.Errorf("%w: %d bytes, over the %d byte limit", runtime.ErrTooLarge, st.Size(), MaxSourceBytes)
	}
	b, err := os.ReadFile(path)
	return string(b), err
}

// acquire returns the engine pool for a memory cap, loading it on first use.
func (e *Engine) acquire(ctx context.Context, mem uint64, size int) (*pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return nil, fmt.Errorf("%w: engine closed", runtime.ErrUnavailable)
	}
	if p, ok := e.pools[mem]; ok {
		return p, nil
	}
	// Not kept: the loader keeps what it needs (18 MB the host would
	// otherwise hold twice), and a second pool is rare.
	module, err := e.engineModule()
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		size = e.opts.PoolSize
	}
	if size <= 0 {
		size = goruntime.GOMAXPROCS(0)
	}
	r, err := e.loader.Load(ctx, runtime.ModuleSpec{
		Name: fmt.Sprintf("js-engine-%dMiB", mem>>20), Path: "(embedded) claimsmith-js-engine.wasm",
		Timeout: engineTimeout, MemoryBytes: mem, PoolSize: size,
		Config: map[string]string{
			"gc_percent":   strconv.Itoa(e.opts.GuestGCPercent),
			"memory_limit": strconv.FormatUint(guestMemoryLimit(mem), 10),
		},
	}, wasm.Module{Bytes: module, Host: []wasm.HostFunc{
		{Name: "js_rule", Fn: e.hostRule},
		{Name: "js_cache", Fn: e.hostCache},
	}})
	if err != nil {
		return nil, fmt.Errorf("starting the JavaScript engine: %w", err)
	}
	p := &pool{rule: r}
	e.pools[mem] = p
	return p, nil
}

func (e *Engine) forget(id string) {
	e.mu.Lock()
	delete(e.defs, id)
	e.mu.Unlock()
}

// callKey carries the running rule (a *callScope) to the host functions.
type callKey struct{}

type callScope struct {
	rule    *Rule
	trigger runtime.Trigger
}

type callInput struct {
	Rule    string          `json:"rule"`
	Check   bool            `json:"check,omitempty"`
	Trigger runtime.Trigger `json:"trigger,omitempty"`
	// Event is the event in the rule's shape (event.go).
	Event     any `json:"event,omitempty"`
	MaxOutput int `json:"max_output,omitempty"`
	// Stats asks for the instance's memory figures instead (guestStats).
	Stats bool `json:"stats,omitempty"`
}

func (e *Engine) hostRule(ctx context.Context, arg []byte) ([]byte, error) {
	e.mu.Lock()
	d := e.defs[string(arg)]
	e.mu.Unlock()
	if d == nil {
		return nil, nil
	}
	return json.Marshal(d)
}

// Status is the health of the engine pools, for logs and `claimsmith check`.
func (e *Engine) Status() []wasm.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]wasm.Status, 0, len(e.pools))
	for _, p := range e.pools {
		out = append(out, p.rule.Status())
	}
	return out
}

// Rule is a loaded JavaScript rule (runtime.Rule, runtime.CleanerUpper).
type Rule struct {
	name, id, path string
	style          Style
	timeout        time.Duration
	engine         *Engine
	pool           *pool
	closed         atomic.Bool
}

var (
	_ runtime.Rule         = (*Rule)(nil)
	_ runtime.CleanerUpper = (*Rule)(nil)
)

// Name is the rule's name from its spec.
func (r *Rule) Name() string { return r.name }

// Style is how the rule is written.
func (r *Rule) Style() Style { return r.style }

// Run runs the rule on an engine instance. Failures are *runtime.RuleError
// naming the rule.
func (r *Rule) Run(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error {
	if r.closed.Load() {
		return &runtime.RuleError{Rule: r.name, Cause: fmt.Errorf("%w: rule was cleaned up", runtime.ErrUnavailable)}
	}
	in := callInput{Rule: r.id, Trigger: ev.Trigger, MaxOutput: wasm.DefaultOutputBytes}
	if r.style == StyleRules {
		// Auth0 ran Rules at login only.
		if ev.Trigger != runtime.TriggerPostLogin {
			return nil
		}
		in.Event = shapeRule(ev)
	} else {
		in.Event = shapeAction(ev)
	}
	ctx = context.WithValue(ctx, callKey{}, &callScope{rule: r, trigger: ev.Trigger})
	err := r.pool.rule.Call(ctx, ev, in, r.timeout, out)
	if err != nil {
		return &runtime.RuleError{Rule: r.name, Cause: cause(err)}
	}
	return nil
}

// Cleanup forgets the rule. Its engine pool stays until Engine.Close, even
// without rules: loading the engine module is the slow part of loading a
// rule, and a rule loaded again (or one that failed its load check) must
// not pay it twice.
func (r *Rule) Cleanup() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.engine.forget(r.id)
	return nil
}
