package js

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEngineArtifactIsCurrent rebuilds the engine from runtime/js/engine
// exactly as `make js-engine` does and fails when the committed
// engine.wasm.gz differs: a change to the guest, its prelude or goja that
// was not rebuilt, or a build that is not reproducible. The bytes depend on
// the Go version, so it must be the one engine.go-version records (go.mod's
// toolchain).
func TestEngineArtifactIsCurrent(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("engine.go-version")
	if err != nil {
		t.Fatal(err)
	}
	goVer, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env GOVERSION: %v", err)
	}
	if strings.TrimSpace(string(goVer)) != strings.TrimSpace(string(want)) {
		t.Fatalf("the engine was built with %s, this is %s: build with that toolchain (GOTOOLCHAIN=%s) to compare",
			strings.TrimSpace(string(want)), strings.TrimSpace(string(goVer)), strings.TrimSpace(string(want)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "engine.wasm")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-buildid=", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = "engine"
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the engine: %v\n%s", err, b)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := EngineModule()
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(built); hex.EncodeToString(sum[:]) != strings.TrimSpace(engineSum) {
		t.Errorf("engine.wasm.sha256 is stale: the rebuilt module's hash is %x; run `make js-engine` and commit it", sum)
	}
	if !bytes.Equal(built, embedded) {
		t.Fatalf("runtime/js/engine.wasm.gz is stale: embedded %d bytes (sha256 %x), rebuilt %d bytes (sha256 %x); run `make js-engine` and commit it",
			len(embedded), sha256.Sum256(embedded), len(built), sha256.Sum256(built))
	}
}

// TestEngineModuleCache: the decompressed engine is kept in the cache
// directory and read from there; a damaged copy is not used but replaced.
func TestEngineModuleCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := New(Options{CacheDir: dir})
	want, err := EngineModule()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "js-engine-"+strings.TrimSpace(engineSum)+".wasm")
	for i, damage := range []bool{false, false, true} {
		if damage {
			if err := os.WriteFile(path, []byte("not the engine"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got, err := e.engineModule()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("round %d: %d bytes, %v", i, len(got), err)
		}
		kept, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(kept, want) {
			t.Fatalf("round %d: the cached copy is %d bytes (%v)", i, len(kept), err)
		}
	}
}
