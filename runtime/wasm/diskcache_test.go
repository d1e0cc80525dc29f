package wasm

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/internal/wasmcache"
)

const tinyModule = `(module (func (export "on_login") (result i32) (i32.const 0)))`

// cachedFiles lists the regular files under dir, relative to it.
func cachedFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func loadOnce(t *testing.T, l *Loader, path string) {
	t.Helper()
	r, err := l.Load(context.Background(), runtime.ModuleSpec{Name: "tiny", Path: path, PoolSize: 1}, Module{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Cleanup(); err != nil {
		t.Fatal(err)
	}
}

// TestCacheNamesRealWazeroVersion: a test binary's wazero calls itself
// "dev", as every wazero version's does, and does not key entries by its
// version: the compiled code must sit in a directory naming the version
// actually compiled in, or a wazero upgrade would load the old one's code.
func TestCacheNamesRealWazeroVersion(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := string(regexp.MustCompile(`(?m)^\s*github\.com/tetratelabs/wazero (\S+)`).FindSubmatch(b)[1])
	dir := t.TempDir()
	l := NewLoader(Options{CacheDir: dir})
	defer l.Close(context.Background())
	loadOnce(t, l, watModule(t, "tiny", tinyModule))
	files := cachedFiles(t, dir)
	if len(files) == 0 {
		t.Fatal("nothing cached")
	}
	for _, f := range files {
		if !strings.HasPrefix(f, "wazero-"+want+"-") && !strings.HasPrefix(f, "wazero-"+want+"+") {
			t.Errorf("%s: not under a directory of wazero %s", f, want)
		}
	}
}

// TestCacheDirRemovedUnderLoader: another process pruning (or an operator
// clearing ~/.cache) the directory of a running loader must not fail its
// next compilation: wazero fails one it cannot write.
func TestCacheDirRemovedUnderLoader(t *testing.T) {
	dir := t.TempDir()
	l := NewLoader(Options{CacheDir: dir, Logger: testLogger(t)})
	defer l.Close(context.Background())
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	loadOnce(t, l, watModule(t, "tiny", tinyModule))
	if len(cachedFiles(t, dir)) == 0 {
		t.Error("nothing cached")
	}
}

// TestCachePrunedAtOpen: a loader opening its directory removes what is
// stale and keeps its own entries and CacheKeep.
func TestCachePrunedAtOpen(t *testing.T) {
	dir := t.TempDir()
	path := watModule(t, "tiny", tinyModule)
	l := NewLoader(Options{CacheDir: dir})
	loadOnce(t, l, path)
	_ = l.Close(context.Background())
	mine := cachedFiles(t, dir)

	old := time.Now().Add(-30 * 24 * time.Hour)
	stale := []string{"wazero-v0.9.0-amd64-linux/0a1b", wasmcache.EnginePrefix + "old.wasm"}
	keep := wasmcache.EnginePrefix + "current.wasm"
	for _, f := range append(stale, keep) {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(p, old, old)
		_ = os.Chtimes(filepath.Dir(p), old, old)
	}
	var logs lockedBuf
	l = NewLoader(Options{CacheDir: dir, CacheKeep: []string{keep}, Logger: slogTo(&logs)})
	defer l.Close(context.Background())
	got := strings.Join(cachedFiles(t, dir), " ")
	for _, f := range stale {
		if strings.Contains(got, f) {
			t.Errorf("kept stale %s", f)
		}
	}
	for _, f := range append(mine, keep) {
		if !strings.Contains(got, f) {
			t.Errorf("removed %s", f)
		}
	}
	if !strings.Contains(logs.String(), "compiled code cache pruned") {
		t.Errorf("no log of the prune: %s", logs.String())
	}
}

// TestCacheDirUnusable: a cache directory that cannot be made only warns;
// modules still load, compiled in memory.
func TestCacheDirUnusable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuf
	l := NewLoader(Options{CacheDir: dir, Logger: slogTo(&logs)})
	defer l.Close(context.Background())
	loadOnce(t, l, watModule(t, "tiny", tinyModule))
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("no warning: %s", logs.String())
	}
}

// TestCachePruneDuringLoads: loaders opening (and pruning) one directory
// while others load from it: every load succeeds, whether it finds its
// compiled module, finds it gone, or writes it.
func TestCachePruneDuringLoads(t *testing.T) {
	dir := t.TempDir()
	path := watModule(t, "tiny", tinyModule)
	d, err := wasmcache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	// What the loaders wrote ages at once; a prune then removes all of it
	// but a write in progress (its temp file is recent).
	wg.Go(func() {
		for ctx.Err() == nil {
			old := time.Now().Add(-30 * 24 * time.Hour)
			for _, f := range cachedFiles(t, dir) {
				if !strings.HasSuffix(f, ".tmp") {
					_ = os.Chtimes(filepath.Join(dir, f), old, old)
				}
			}
			d.Prune(ctx, wasmcache.Policy{})
		}
	})
	var loads sync.WaitGroup
	for range 3 {
		loads.Go(func() {
			for ctx.Err() == nil {
				l := NewLoader(Options{CacheDir: dir})
				r, err := l.Load(context.Background(), runtime.ModuleSpec{Name: "tiny", Path: path, PoolSize: 1}, Module{})
				if err != nil {
					t.Error(err)
					cancel()
				} else {
					_ = r.Cleanup()
				}
				_ = l.Close(context.Background())
			}
		})
	}
	loads.Wait()
	wg.Wait()
}

// lockedBuf collects log lines from any goroutine.
type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func slogTo(w *lockedBuf) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// TestCacheUnwritableCompilesInMemory: wazero fails a compilation it
// cannot write to its cache (a full disk, a read-only or vanished
// directory): the module is compiled in memory instead, with a warning.
func TestCacheUnwritableCompilesInMemory(t *testing.T) {
	dir := t.TempDir()
	var logs lockedBuf
	l := NewLoader(Options{CacheDir: dir, Logger: slogTo(&logs)})
	defer l.Close(context.Background())
	d, err := wasmcache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A file where the directory was: nothing can be written or made there.
	if err := os.RemoveAll(d.Current()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.Current(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	loadOnce(t, l, watModule(t, "tiny", tinyModule))
	if !strings.Contains(logs.String(), "compiled in memory") {
		t.Errorf("no warning: %s", logs.String())
	}
}

// TestCacheCorruptEntryCompilesInMemory: a cached module wazero cannot
// read back fails its compilation; it is compiled in memory instead.
func TestCacheCorruptEntryCompilesInMemory(t *testing.T) {
	dir := t.TempDir()
	path := watModule(t, "tiny", tinyModule)
	l := NewLoader(Options{CacheDir: dir})
	loadOnce(t, l, path)
	_ = l.Close(context.Background())
	files := cachedFiles(t, dir)
	if len(files) == 0 {
		t.Fatal("nothing cached")
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("not compiled code"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs lockedBuf
	l = NewLoader(Options{CacheDir: dir, Logger: slogTo(&logs)})
	defer l.Close(context.Background())
	loadOnce(t, l, path)
	if !strings.Contains(logs.String(), "compiled in memory") {
		t.Errorf("no warning: %s", logs.String())
	}
}
