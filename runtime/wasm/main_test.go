package wasm

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/wasm/wasmbuild"
)

// samples builds samples/rules once per test binary run.
var samples *wasmbuild.Samples

// testCacheDir is the on-disk compilation cache every test loader shares,
// across test runs: compiling a Go guest took up to 26 s on a loaded
// machine, reading it back takes milliseconds.
var testCacheDir string

// newTestLoader is NewLoader with the shared test compilation cache.
func newTestLoader(opts Options) *Loader {
	if opts.CacheDir == "" {
		opts.CacheDir = testCacheDir
	}
	return NewLoader(opts)
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "claimsmith-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if base, err := os.UserCacheDir(); err == nil {
		testCacheDir = filepath.Join(base, "claimsmith", "wazero-test")
	}
	samples, err = wasmbuild.NewSamples(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if testCacheDir != "" {
		samples.CacheDir = filepath.Join(filepath.Dir(testCacheDir), "wasmbuild-test")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sample builds samples/rules/<name> and compiles it into the shared test
// cache once (see warm).
func sample(t testing.TB, name string) string {
	t.Helper()
	return warm(t, samples.MustBuild(t, name))
}

// warmed holds one sync.Once per module path: the first test to load a
// module compiles it into the shared on-disk cache while the others wait.
// Parallel tests would otherwise compile the same Go guest at the same
// time on a cold cache (a minute each under -race on a busy machine).
var warmed = struct {
	sync.Mutex
	once map[string]*sync.Once
}{once: map[string]*sync.Once{}}

// warm compiles the module at path into testCacheDir once per test binary
// and returns path. A module that does not load is left to the test.
func warm(t testing.TB, path string) string {
	t.Helper()
	warmed.Lock()
	o := warmed.once[path]
	if o == nil {
		o = new(sync.Once)
		warmed.once[path] = o
	}
	warmed.Unlock()
	o.Do(func() {
		if testCacheDir == "" {
			return
		}
		ctx := context.Background()
		l := NewLoader(Options{CacheDir: testCacheDir})
		defer l.Close(ctx)
		if r, err := l.Load(ctx, runtime.ModuleSpec{Name: "warm", Path: path, PoolSize: 1}, Module{}); err == nil {
			_ = r.Cleanup()
		}
	})
	return path
}

// testLogger writes to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// load compiles a module for a test and cleans it up afterwards.
func load(t testing.TB, l *Loader, spec runtime.ModuleSpec) *Rule {
	t.Helper()
	if spec.Name == "" {
		spec.Name = filepath.Base(spec.Path)
	}
	r, err := l.LoadModule(context.Background(), spec)
	if err != nil {
		t.Fatalf("LoadModule(%s): %v", spec.Path, err)
	}
	t.Cleanup(func() {
		if err := r.(*Rule).Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return r.(*Rule)
}

// watModule assembles inline WebAssembly text into a .wasm in the test's
// temporary folder.
func watModule(t testing.TB, name, src string, flags ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	if err := wasmbuild.WATSource(context.Background(), src, out, flags...); err != nil {
		t.Fatal(err)
	}
	return out
}

func sampleEvent() *runtime.Event {
	return &runtime.Event{
		Trigger: runtime.TriggerPostLogin,
		User: runtime.User{
			UserID: "auth0|alice", Email: "alice@Acme.example", EmailVerified: true, Name: "Alice",
			Groups:      []string{"ad-engineering"},
			AppMetadata: map[string]any{"plan": "gold"},
		},
		Client:      runtime.Client{ClientID: "client-1", Name: "Dashboard", Metadata: map[string]string{"required_roles": "viewer"}},
		Connection:  runtime.Connection{Name: "corp-ad", Strategy: "ad"},
		Request:     runtime.Request{IP: "198.51.100.23", UserAgent: "test", Hostname: "login.example"},
		Transaction: runtime.Transaction{RequestedScopes: []string{"openid", "profile"}, Protocol: "oidc"},
	}
}

func runRule(t testing.TB, r runtime.Rule, ev *runtime.Event) (runtime.Commands, error) {
	t.Helper()
	var out runtime.Commands
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.Run(ctx, ev, &out)
	return out, err
}
