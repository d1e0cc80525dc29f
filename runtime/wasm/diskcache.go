package wasm

import (
	"context"

	extism "github.com/extism/go-sdk"

	"github.com/tetratelabs/wazero"

	"github.com/claimsmith/claimsmith/runtime/internal/wasmcache"
)

// openCache opens opts.CacheDir for compiled code: stale entries are
// pruned first, then wazero's file cache is opened in the directory of the
// wazero version this binary runs. A directory that cannot be used costs
// start-up time, not correctness: compiled code then stays in memory.
func openCache(opts Options) (wazero.CompilationCache, *wasmcache.Dir) {
	if opts.CacheDir == "" {
		return wazero.NewCompilationCache(), nil
	}
	log := opts.Logger
	d, err := wasmcache.Open(opts.CacheDir)
	if err != nil {
		log.Warn("wasm compilation cache unusable; compiling in memory", "dir", opts.CacheDir, "err", err)
		return wazero.NewCompilationCache(), nil
	}
	// NewLoader takes no context: a prune is one scan of a few entries,
	// bounded by the directory, and runs where a loader is made (start-up,
	// a reload, `check`), never on a login.
	d.Prune(context.Background(), wasmcache.Policy{Keep: opts.CacheKeep}).Log(log, opts.CacheDir)
	c, err := wazero.NewCompilationCacheWithDir(d.WazeroDir())
	if err != nil {
		log.Warn("wasm compilation cache unusable; compiling in memory", "dir", opts.CacheDir, "err", err)
		return wazero.NewCompilationCache(), nil
	}
	if err := d.Use(); err != nil {
		log.Warn("wasm compilation cache: cannot mark it used", "dir", d.Current(), "err", err)
	}
	return c, d
}

// useCache marks the cache directory used before a compilation and makes
// it again if another process pruned it meanwhile: wazero fails a
// compilation it cannot write to its directory.
func (l *Loader) useCache() {
	if l.disk == nil {
		return
	}
	if err := l.disk.Use(); err != nil {
		l.log.Warn("wasm compilation cache: cannot use its directory", "dir", l.disk.Current(), "err", err)
	}
}

// memCache holds the in-memory compilation cache a loader falls back to
// (wazero takes only its own type, so it is not embedded).
type memCache struct{ cache wazero.CompilationCache }

// compileWithoutDisk compiles again in memory after a compilation through
// the disk cache failed: wazero fails one whose result it cannot write (a
// full disk, a read-only directory) or whose cached copy it cannot read
// back, and a cache is to cost time, not rules. A module that is itself
// bad fails again, and that error is returned.
func (l *Loader) compileWithoutDisk(compile func(wazero.CompilationCache) (*extism.CompiledPlugin, error), diskErr error) (*extism.CompiledPlugin, error) {
	mem := l.mem.Load()
	if mem == nil {
		// A loser's cache is dropped unused: it holds nothing until used.
		l.mem.CompareAndSwap(nil, &memCache{wazero.NewCompilationCache()})
		mem = l.mem.Load()
	}
	compiled, err := compile(mem.cache)
	if err != nil {
		return nil, err
	}
	l.log.Warn("wasm compilation cache failed; compiled in memory", "dir", l.disk.Current(), "err", diskErr)
	return compiled, nil
}
