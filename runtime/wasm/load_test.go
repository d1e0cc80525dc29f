package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestLoadErrorsNamePathAndReason: what `claimsmith check` shows for a broken
// module comes from these errors.
func TestLoadErrorsNamePathAndReason(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, err := os.ReadFile(samples.MustBuild(t, "deny-blocked-ips"))
	if err != nil {
		t.Fatal(err)
	}
	truncated := good[:len(good)-40]
	l := newTestLoader(Options{Logger: testLogger(t)})
	for _, tc := range []struct {
		name, path string
		spec       func(*runtime.ModuleSpec)
		target     error
		want       string
	}{
		{"missing file", filepath.Join(dir, "nope.wasm"), nil, runtime.ErrNotFound, "no such file"},
		{"directory", dir, nil, runtime.ErrInvalid, "is a directory"},
		{"not wasm", write("text.wasm", []byte("console.log('hi')\n")), nil, runtime.ErrInvalid, "not a WebAssembly binary"},
		{"empty", write("empty.wasm", nil), nil, runtime.ErrInvalid, "not a WebAssembly binary"},
		{"truncated", write("trunc.wasm", truncated), nil, runtime.ErrInvalid, "malformed module"},
		{"missing export", watModule(t, "noexport", `(module (func (export "hello") (result i32) (i32.const 0)))`), nil, runtime.ErrInvalid,
			"missing export: the module exports neither on_login nor on_credentials_exchange (it exports: hello)"},
		{"bad signature", watModule(t, "badsig", `(module (func (export "on_login") (param i32) (result i32) (i32.const 0)))`), nil, runtime.ErrInvalid,
			"export on_login has signature [i32] -> [i32]; the ABI wants () -> i32"},
		{"compile error", watModule(t, "typeerr", `(module (func (export "on_login") (result i32) (i64.const 0)))`, "--no-check"), nil, runtime.ErrInvalid, "compile:"},
		{"unknown host function", watModule(t, "unknownimport", `(module
  (import "extism:host/user" "launch_missiles" (func $x))
  (func (export "on_login") (result i32) (call $x) (i32.const 0)))`), nil, runtime.ErrInvalid, "launch_missiles"},
		{"reserved export", watModule(t, "reserved", `(module (global (export "claimsmith_stop") i32 (i32.const 0)) (func (export "on_login") (result i32) (i32.const 0)))`), nil, runtime.ErrInvalid, "reserves"},
		{"memory over cap", watModule(t, "bigmem", `(module (memory 512) (func (export "on_login") (result i32) (i32.const 0)))`),
			func(s *runtime.ModuleSpec) { s.MemoryBytes = 1 << 20 }, runtime.ErrInvalid, "min 512 pages (32 Mi) over limit of 16 pages"},
		{"bad allowed host", watModule(t, "ok", `(module (func (export "on_login") (result i32) (i32.const 0)))`),
			func(s *runtime.ModuleSpec) { s.AllowedHosts = []string{"https://api.example.com/x"} }, runtime.ErrInvalid, "allowed_hosts entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := runtime.ModuleSpec{Name: "broken", Path: tc.path, PoolSize: 1}
			if tc.spec != nil {
				tc.spec(&spec)
			}
			r, err := l.LoadModule(context.Background(), spec)
			if err == nil {
				_ = r.(*Rule).Cleanup()
				t.Fatal("LoadModule succeeded")
			}
			var me *ModuleError
			if !errors.As(err, &me) || me.Path != tc.path || me.Rule != "broken" {
				t.Fatalf("error %v (%T) is not a *ModuleError naming rule and path", err, err)
			}
			if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the path and %q", err, tc.want)
			}
			if !errors.Is(err, tc.target) {
				t.Errorf("error %v does not match %v", err, tc.target)
			}
			t.Log(err)
		})
	}
}

// TestCleanupThenReload: a cleaned-up rule refuses calls; loading the same
// module again (a config reload) works from the loader's compilation cache.
func TestCleanupThenReload(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	path := sample(t, "weekday-only")
	for i := 0; i < 2; i++ {
		r, err := l.LoadModule(context.Background(), runtime.ModuleSpec{Name: "w", Path: path, PoolSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := runRule(t, r, sampleEvent()); err != nil {
			t.Fatal(err)
		}
		if err := r.(*Rule).Cleanup(); err != nil {
			t.Fatal(err)
		}
		_, err = runRule(t, r, sampleEvent())
		if !errors.Is(err, runtime.ErrUnavailable) {
			t.Fatalf("after Cleanup: %v, want ErrUnavailable", err)
		}
	}
}
