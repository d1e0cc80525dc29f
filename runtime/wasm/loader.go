package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	goruntime "runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/internal/wasmcache"
)

// PolicyResolver is the one look-up the host functions authz_is_member and
// authz_user_policy need: the store, or the policy cache in front of it.
type PolicyResolver interface {
	ResolvePolicy(ctx context.Context, q authz.PolicyQuery) (authz.Policy, error)
}

// Defaults applied when a ModuleSpec or Options leaves a limit at zero.
const (
	DefaultTimeout      = 500 * time.Millisecond
	DefaultMemoryBytes  = 64 << 20
	DefaultOutputBytes  = 1 << 20
	DefaultMaxAbandoned = 4
	// DefaultInitTimeout is the least time a module's initialisers get.
	DefaultInitTimeout = time.Second
	// DefaultModuleBytes caps the .wasm file a rule may load.
	DefaultModuleBytes = 64 << 20
)

// Exports a rule module may provide, one per trigger.
const (
	ExportLogin       = "on_login"
	ExportCredentials = "on_credentials_exchange"
)

const pageSize = 65536

// Options configure a Loader. Zero values pick the defaults above.
type Options struct {
	// Logger receives load, discard and disable events (never the event data).
	Logger *slog.Logger
	// Authz serves the authz_* host functions. Nil: those calls fail the rule.
	Authz PolicyResolver
	// MaxOutputBytes caps what a guest may return.
	MaxOutputBytes int
	// MaxAbandoned is the per-rule number of timed-out calls that may still be
	// running (abandoned) before the rule is disabled until it is reloaded.
	MaxAbandoned int
	// CacheDir, when set, keeps compiled modules on disk there (wazero's
	// file cache, keyed by the module's bytes and wazero's version), so a
	// restart does not compile again. Empty: in memory, per loader.
	// NewLoader prunes it (runtime/internal/wasmcache): entries unused for
	// a week, then the least recently used past 512 MiB.
	CacheDir string
	// CacheKeep names files in CacheDir its user still needs (the
	// JavaScript engine's decompressed module): pruning keeps them.
	CacheKeep []string
	// InitTimeout bounds making one instance: instantiation and the
	// module's initialisers (start function, _initialize, constructors).
	// Default: twice the rule's call timeout, at least DefaultInitTimeout.
	InitTimeout time.Duration
	// Now is the guests' wall clock (default time.Now; `claimsmith test
	// --now` pins it for time-based rules). Their monotonic clock is always
	// the host's: a guest's garbage collector paces itself by it.
	Now func() time.Time
}

// Loader compiles WebAssembly rules (runtime.ModuleLoader). It keeps one
// compilation cache, so reloading an unchanged module does not compile it
// again. Close it after the last rule it loaded was cleaned up.
type Loader struct {
	opts  Options
	log   *slog.Logger
	cache wazero.CompilationCache
	// disk is the on-disk cache's directory, nil when compiled code is
	// kept in memory.
	disk *wasmcache.Dir
	// mem compiles in memory what the disk cache failed (compileWithoutDisk).
	mem atomic.Pointer[memCache]
	// live counts instance workers of every rule this loader made, open the
	// compiled modules not yet closed: both reach zero once every rule was
	// cleaned up and every stopped guest has ended.
	live, open atomic.Int64
}

var _ runtime.ModuleLoader = (*Loader)(nil)

// NewLoader returns a loader.
func NewLoader(opts Options) *Loader {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = DefaultOutputBytes
	}
	if opts.MaxAbandoned <= 0 {
		opts.MaxAbandoned = DefaultMaxAbandoned
	}
	cache, disk := openCache(opts)
	return &Loader{opts: opts, log: opts.Logger, cache: cache, disk: disk}
}

// Close releases the compilation caches.
func (l *Loader) Close(ctx context.Context) error {
	err := l.cache.Close(ctx)
	if mem := l.mem.Load(); mem != nil {
		err = errors.Join(err, mem.cache.Close(ctx))
	}
	return err
}

// ModuleError is a rule module that could not be loaded: it names the rule,
// the file and what was wrong. It matches runtime.ErrInvalid (or
// runtime.ErrNotFound for a missing file).
type ModuleError struct {
	Rule, Path, Reason string
	Err                error
}

func (e *ModuleError) Error() string {
	return fmt.Sprintf("wasm rule %q: %s: %s", e.Rule, e.Path, e.Reason)
}

// Unwrap returns the cause.
func (e *ModuleError) Unwrap() error { return e.Err }

// Is reports runtime.ErrInvalid unless the cause says otherwise.
func (e *ModuleError) Is(target error) bool {
	return target == runtime.ErrInvalid && !errors.Is(e.Err, runtime.ErrNotFound)
}

// HostFunc is an extra host function a module given to Load may import
// from "extism:host/user": one string in (an extism memory offset), one
// string out (0 for none). ctx carries the values of the context given to
// Rule.Call. An error traps the guest, which fails the call.
type HostFunc struct {
	Name string
	Fn   func(ctx context.Context, arg []byte) ([]byte, error)
}

// Module is a module given by its bytes (an engine embedded in the
// binary) instead of spec.Path, with extra host functions.
type Module struct {
	Bytes []byte
	Host  []HostFunc
}

// LoadModule reads, checks and compiles spec.Path once and fills a pool of
// warm instances. Errors are *ModuleError naming the path and the reason.
func (l *Loader) LoadModule(ctx context.Context, spec runtime.ModuleSpec) (runtime.Rule, error) {
	r, err := l.Load(ctx, spec, Module{})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Load is LoadModule with the module's bytes given (m.Bytes; spec.Path then
// only names it) and extra host functions.
func (l *Loader) Load(ctx context.Context, spec runtime.ModuleSpec, m Module) (*Rule, error) {
	fail := func(err error, format string, args ...any) error {
		return &ModuleError{Rule: spec.Name, Path: spec.Path, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	if spec.Name == "" {
		return nil, fail(runtime.ErrInvalid, "the rule has no name")
	}
	if spec.Path == "" && m.Bytes == nil {
		return nil, fail(runtime.ErrInvalid, "no .wasm path given")
	}
	if spec.Timeout < 0 || spec.PoolSize < 0 {
		return nil, fail(runtime.ErrInvalid, "timeout and pool size must not be negative")
	}
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	memBytes := spec.MemoryBytes
	if memBytes == 0 {
		memBytes = DefaultMemoryBytes
	}
	pages := (memBytes + pageSize - 1) / pageSize
	if pages > 65536 {
		return nil, fail(runtime.ErrInvalid, "memory cap %d bytes is over the 4 GiB a 32-bit module can address", memBytes)
	}
	poolSize := spec.PoolSize
	if poolSize == 0 {
		poolSize = goruntime.GOMAXPROCS(0)
	}
	for _, h := range spec.AllowedHosts {
		if strings.TrimSpace(h) == "" || strings.Contains(h, "/") {
			return nil, fail(runtime.ErrInvalid, "allowed_hosts entry %q is not a host name or glob (no scheme, no path)", h)
		}
	}

	raw, err := m.Bytes, error(nil)
	if raw == nil {
		raw, err = readModule(spec.Path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fail(fmt.Errorf("%w: %w", runtime.ErrNotFound, err), "no such file")
		}
		return nil, fail(err, "%v", err)
	}
	bin, err := instrument(raw)
	if err != nil {
		return nil, fail(err, "%v", err)
	}

	started := time.Now()
	l.useCache()
	rcfg := func(cache wazero.CompilationCache) wazero.RuntimeConfig {
		return wazero.NewRuntimeConfig().
			WithCompilationCache(cache).
			WithMemoryLimitPages(uint32(pages)).
			WithDebugInfoEnabled(false) // instrumentation shifts code offsets; names still show in traces
	}
	manifest := extism.Manifest{
		Wasm:         []extism.Wasm{extism.WasmData{Data: bin, Name: "main"}},
		Memory:       &extism.ManifestMemory{MaxPages: uint32(pages), MaxHttpResponseBytes: int64(l.opts.MaxOutputBytes), MaxVarBytes: 64 << 10},
		Config:       cloneConfig(spec.Config),
		AllowedHosts: append([]string(nil), spec.AllowedHosts...),
	}
	initTimeout := l.opts.InitTimeout
	if initTimeout <= 0 {
		initTimeout = max(2*timeout, DefaultInitTimeout)
	}
	r := &Rule{
		name:        spec.Name,
		path:        spec.Path,
		timeout:     timeout,
		initTimeout: initTimeout,
		live:        &l.live,
		open:        &l.open,
		maxOutput:   l.opts.MaxOutputBytes,
		maxStuck:    int32(l.opts.MaxAbandoned),
		log:         l.log.With("rule", spec.Name),
		authz:       l.opts.Authz,
		config:      manifest.Config,
		moduleBytes: len(raw),
	}
	compile := func(cache wazero.CompilationCache) (*extism.CompiledPlugin, error) {
		return extism.NewCompiledPlugin(ctx, manifest, extism.PluginConfig{
			RuntimeConfig: rcfg(cache),
			EnableWasi:    true,
		}, append(r.hostFunctions(), extraHostFunctions(m.Host)...))
	}
	compiled, err := compile(l.cache)
	if err != nil && l.disk != nil && ctx.Err() == nil {
		compiled, err = l.compileWithoutDisk(compile, err)
	}
	if err != nil {
		return nil, fail(err, "compile: %v", err)
	}
	r.compiled = compiled
	l.open.Add(1)
	r.bgCtx, r.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	r.pool = make(chan *instance, poolSize)
	r.poolSize = poolSize
	// Real clocks and randomness: wazero's defaults are deterministic fakes,
	// and a pooled Go guest on the fake clock stops collecting garbage
	// after some 57,000 calls.
	r.moduleConfig = wazero.NewModuleConfig().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	if now := l.opts.Now; now != nil {
		r.moduleConfig = r.moduleConfig.WithWalltime(func() (int64, int32) {
			t := now()
			return t.Unix(), int32(t.Nanosecond())
		}, sys.ClockResolution(time.Microsecond))
	} else {
		r.moduleConfig = r.moduleConfig.WithSysWalltime()
	}

	first, err := r.newInstance(ctx)
	if err != nil {
		_ = r.Cleanup()
		return nil, fail(err, "instantiate: %v", err)
	}
	r.pool <- first
	if first.onLogin == nil && first.onCredentials == nil {
		names := make([]string, 0)
		for name := range first.main.ExportedFunctionDefinitions() {
			if name != stopExport && name != startExport {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		_ = r.Cleanup()
		return nil, fail(runtime.ErrInvalid, "missing export: the module exports neither %s nor %s (it exports: %s)",
			ExportLogin, ExportCredentials, strings.Join(names, ", "))
	}
	if err := first.checkSignatures(); err != nil {
		_ = r.Cleanup()
		return nil, fail(err, "%v", err)
	}
	for i := 1; i < poolSize; i++ {
		in, err := r.newInstance(ctx)
		if err != nil {
			_ = r.Cleanup()
			return nil, fail(err, "instantiate: %v", err)
		}
		r.pool <- in
	}
	r.log.Info("wasm rule loaded", "path", spec.Path, "bytes", len(raw), "pool", poolSize,
		"timeout", timeout, "memory_pages", pages, "took", time.Since(started).Round(time.Millisecond),
	)
	return r, nil
}

func readModule(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: is a directory, not a .wasm file", runtime.ErrInvalid)
	}
	if st.Size() > DefaultModuleBytes {
		return nil, fmt.Errorf("%w: module is %d bytes, over the %d byte limit", runtime.ErrTooLarge, st.Size(), DefaultModuleBytes)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}

func cloneConfig(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
