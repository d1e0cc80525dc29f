package wasmbuild

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSourceHash: the AssemblyScript build cache key changes with any
// source file and ignores node_modules and built .wasm files.
func TestSourceHash(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hash := func() string {
		t.Helper()
		h, err := sourceHash(dir)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	write("package.json", `{"name":"x"}`)
	write("assembly/index.ts", "export function on_login(): i32 { return 0 }")
	h0 := hash()
	write("node_modules/assemblyscript/x.js", "anything")
	write("x.wasm", "built")
	if h := hash(); h != h0 {
		t.Errorf("node_modules or a .wasm changed the key")
	}
	write("assembly/index.ts", "export function on_login(): i32 { return 1 }")
	h1 := hash()
	if h1 == h0 {
		t.Errorf("a source change kept the key")
	}
	write("assembly/index.ts", "export function on_login(): i32 { return 0 }")
	write("assembly/util.ts", "")
	if h := hash(); h == h0 || h == h1 {
		t.Errorf("a new source file kept the key")
	}
}
