// Package browser_test runs the dashboard in a real browser: Debian's
// headless chromium driven by playwright-core (npm; no browser download)
// against claimsmith serve built in-process on a free loopback port, with
// the sample configuration and a temp data dir seeded with samples/data.
//
// Without chromium or node the test skips, saying what is missing; with
// CLAIMSMITH_REQUIRE_BROWSER set (make test sets it, after `make
// browser-deps`) it fails instead. CLAIMSMITH_SCREENSHOTS names the
// directory for the pages' screenshots (default: a temp dir); `make
// screenshots` refreshes the README's copies in hooks/dashboard/screenshots.
package browser_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

// offsetClock is the server's clock: real time plus an offset the browser
// scenario moves forward (POST /advance) to expire its session.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("by"))
	if r.Method != http.MethodPost || r.URL.Path != "/advance" || err != nil || d <= 0 {
		http.Error(w, "POST /advance?by=DURATION", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// need skips the test, or fails it under CLAIMSMITH_REQUIRE_BROWSER.
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CLAIMSMITH_REQUIRE_BROWSER") != "" {
		t.Fatal(msg + " (CLAIMSMITH_REQUIRE_BROWSER is set; `make browser-deps` installs it)")
	}
	t.Skip(msg + ": the browser test needs Debian's chromium and Node.js 20+ (`make browser-deps`)")
}

// findChromium is $CLAIMSMITH_CHROMIUM or Debian's chromium on PATH.
func findChromium() string {
	if p := os.Getenv("CLAIMSMITH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func TestDashboardInChromium(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		need(t, "chromium is not installed")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need(t, "node is not installed")
	}
	dir, _ := os.Getwd()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			need(t, "npm is not installed")
		}
		// playwright-core alone: the browser is Debian's, never downloaded.
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			need(t, "npm ci (playwright-core) failed: %v\n%s", err, out)
		}
	}
	shots := os.Getenv("CLAIMSMITH_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, keyAll, keyRead, control, srvLog := startServer(ctx, t)

	sctx, scancel := context.WithTimeout(ctx, 3*time.Minute)
	defer scancel()
	cmd := exec.CommandContext(sctx, node, "scenario.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL="+base, "CHROMIUM="+chrome, "KEY_ALL="+keyAll, "KEY_READ="+keyRead,
		"CONTROL_URL="+control, "SCREENSHOTS="+shots, "IMPORT_FILE="+filepath.Join(dir, "../../../samples/data/extension-export.json"),
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last map[string]any
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			t.Logf("scenario: %s", sc.Text())
			continue
		}
		last = line
		if s, ok := line["step"]; ok && line["ok"] == nil {
			t.Logf("ok  %-45s %5.0f ms", s, line["ms"])
		}
	}
	werr := cmd.Wait()
	if werr != nil || last == nil || last["ok"] != true {
		t.Fatalf("browser scenario failed (%v) at step %v:\n%v\nnode stderr:\n%s\nserver log:\n%s", werr, last["step"], last["error"], stderr.String(), srvLog())
	}
	t.Logf("scenario passed in %s; screenshots in %s", time.Since(start).Round(time.Millisecond), shots)
	for _, name := range []string{"signin", "groups", "group", "users", "trylogin", "import-preview", "users-phone",
		"roles", "applications", "audit", "keys", "rules"} {
		if fi, err := os.Stat(filepath.Join(shots, name+".png")); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s.png missing or empty: %v", name, err)
		}
	}
}

// startServer builds claimsmith serve in-process from the sample
// configuration on a free loopback port, with a temp data dir seeded with
// samples/data and two admin keys, and a control endpoint for its clock.
func startServer(ctx context.Context, t *testing.T) (base, keyAll, keyRead, control string, logs func() string) {
	t.Helper()
	repo, _ := filepath.Abs("../../..")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + ln.Addr().String()
	secrets := map[string]string{
		"CLAIMSMITH_DEV_BEARER_KEY":        "browser-bearer-key",
		"CLAIMSMITH_DEV_WEBHOOK_SECRET":    "whsec_Y2xhaW1zbWl0aC1kZXYtd2ViaG9vay1zZWNyZXQtMzJi",
		"CLAIMSMITH_DEV_HYDRA_KEY":         "browser-hydra-key",
		"CLAIMSMITH_DEV_EXTENSION_KEY":     "browser-extension-key",
		"CLAIMSMITH_DEV_INTROSPECT_SECRET": "browser-introspection-secret",
	}
	clock := &offsetClock{}
	var logBuf syncBuffer
	env := setup.Env{DataDir: t.TempDir(), Getenv: func(k string) string { return secrets[k] },
		Log: slog.New(slog.NewTextHandler(&logBuf, nil)), Now: clock.Now}
	cfg, err := setup.Load(filepath.Join(repo, "samples/config/claimsmith.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The admin keys, in the data dir's key store before the server opens it.
	b, err := setup.OpenBackends(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	as, err := b.Admin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, keyAll, err = as.Keys.Create(ctx, "browser-admin", admin.AllScopes()); err != nil {
		t.Fatal(err)
	}
	if _, keyRead, err = as.Keys.Create(ctx, "browser-reader", []string{admin.ScopeRead}); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()

	srv, err := setup.Build(ctx, cfg, setup.Options{Env: env, Overrides: setup.Overrides{Addr: ln.Addr().String(), Issuer: base}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(repo, "samples/data/claimsmith-full.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := authz.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store().Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = srv.Close()
	})
	waitReady(t, base+"/readyz")

	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs := &http.Server{Handler: clock, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = cs.Serve(cln) }()
	t.Cleanup(func() { _ = cs.Close() })
	return base, keyAll, keyRead, "http://" + cln.Addr().String(), logBuf.String
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

// syncBuffer is the server log, written by its goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
