package js

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEngineModuleCacheBounded: opening an engine removes other builds'
// decompressed modules nobody used for long and keeps its own however
// old, and using it marks it used (another build's claimsmith sharing the
// directory would otherwise prune it).
func TestEngineModuleCacheBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	module, err := EngineModule()
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	current := filepath.Join(dir, "js-engine-"+strings.TrimSpace(engineSum)+".wasm")
	stale := filepath.Join(dir, "js-engine-"+strings.Repeat("0", 64)+".wasm")
	for p, b := range map[string][]byte{current: module, stale: []byte("an older build")} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	e := New(Options{CacheDir: dir})
	defer e.Close(context.Background())
	if _, err := os.Stat(stale); err == nil {
		t.Error("an older build's engine module was kept")
	}
	before, err := os.Stat(current)
	if err != nil {
		t.Fatalf("the current engine module was removed: %v", err)
	}
	if _, err := e.engineModule(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(current)
	if err != nil || !os.SameFile(before, st) {
		t.Fatalf("the engine module was written again, not read (%v)", err)
	}
	if time.Since(st.ModTime()) > time.Hour {
		t.Errorf("using the engine module did not mark it used (mtime %v)", st.ModTime())
	}
}
