package setup_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

// TestStartupLogListsOnlyConfiguredRoutes: serve's start-up line lists the
// routes the configuration serves, not every dialect mounted for a later
// reload (it listed Supabase and Zitadel routes nobody configured), and one
// line names the endpoints left off with the key that turns each on.
func TestStartupLogListsOnlyConfiguredRoutes(t *testing.T) {
	for _, c := range []struct {
		name      string
		extra     string // appended to baseConfig's hooks section
		served    []string
		notServed []string
		off       []string
	}{
		{
			name:      "native only",
			served:    []string{"POST /hooks/v1/post-login", "POST /hooks/v1/credentials-exchange", "GET /.well-known/jwks.json", "/api/groups"},
			notServed: []string{"/hooks/zitadel/", "/hooks/supabase/", "/hooks/hydra/", "/hooks/forward-auth", "/oauth2/token", "/policy/"},
			off: []string{"hydra (hooks.hydra)", "zitadel (hooks.zitadel)", "supabase (hooks.supabase)", "auth0 (hooks.policy)",
				"token exchange (exchange.enabled)", "forward-auth (forward_auth.enabled)"},
		},
		{
			name:      "native and hydra",
			extra:     "  hydra:\n    api_key_env: T_HYDRA\n",
			served:    []string{"POST /hooks/v1/post-login", "POST /hooks/hydra/token", "POST /hooks/hydra/refresh"},
			notServed: []string{"/hooks/zitadel/", "/hooks/supabase/"},
			off:       []string{"zitadel (hooks.zitadel)", "supabase (hooks.supabase)"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := startupLog(t, strings.Replace(baseConfig, "store:\n", c.extra+"store:\n", 1))
			start := logLine(t, log, "claimsmith serve")
			routes := regexp.MustCompile(`routes="\[(.*?)\]"`).FindStringSubmatch(start)
			if routes == nil {
				t.Fatalf("no routes in %s", start)
			}
			for _, p := range c.served {
				if !strings.Contains(routes[1], p) {
					t.Errorf("served route %q not listed: %s", p, routes[1])
				}
			}
			for _, p := range c.notServed {
				if strings.Contains(routes[1], p) {
					t.Errorf("unconfigured %q listed: %s", p, routes[1])
				}
			}
			off := logLine(t, log, "not configured")
			if strings.Count(log, "not configured") != 1 {
				t.Errorf("the endpoints left off are not named once:\n%s", log)
			}
			for _, o := range c.off {
				if !strings.Contains(off, o) {
					t.Errorf("%q not named as off: %s", o, off)
				}
			}
			if strings.Contains(off, "native") || (c.extra != "" && strings.Contains(off, "hydra")) {
				t.Errorf("a configured dialect is named as off: %s", off)
			}
			// Every key named is a section of hooks.
			for _, m := range regexp.MustCompile(`\(hooks\.([a-z_]+)\)`).FindAllStringSubmatch(off, -1) {
				if !hooksSection(m[1]) {
					t.Errorf("hooks.%s is not a key of the hooks section", m[1])
				}
			}
		})
	}
}

// startupLog serves yaml until it listens and returns what it logged.
func startupLog(t *testing.T, yaml string) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuf
	env := setup.Env{DataDir: filepath.Join(dir, "data"), Log: slog.New(slog.NewTextHandler(&buf, nil)), Getenv: func(k string) string {
		return map[string]string{"T_WEBHOOK": goodWebhookSecret, "T_HYDRA": "hydra-key"}[k]
	}}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, stop := serveOnLoopback(ctx, t, srv)
	if _, err := srv.Addr(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// serveOnLoopback serves srv on a free loopback port until stop, which
// ends it, waits and returns Serve's error (callers defer it after their
// srv.Close, so the server stops before it is closed).
func serveOnLoopback(ctx context.Context, t *testing.T, srv *setup.Server) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	var once sync.Once
	var serveErr error
	return "http://" + ln.Addr().String(), func() error {
		once.Do(func() { cancel(); serveErr = <-done })
		return serveErr
	}
}

func logLine(t *testing.T, log, msg string) string {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, msg) {
			return l
		}
	}
	t.Fatalf("no %q line in:\n%s", msg, log)
	return ""
}

// hooksSection reports whether key is a yaml key of the hooks section.
func hooksSection(key string) bool {
	rt := reflect.TypeFor[login.Config]()
	for i := range rt.NumField() {
		if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ","); name == key {
			return true
		}
	}
	return false
}

// syncBuf is a log sink written by the server's goroutines.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
