package wasm

import (
	"context"

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
