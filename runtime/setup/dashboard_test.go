package setup_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/setup"
)

// syncBuffer is a log sink read while the server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// serve builds the server of baseConfig with extra environment and serves
// it on ln until the test ends; it returns the log.
func serveDashboard(t *testing.T, ln net.Listener, env map[string]string) *syncBuffer {
	t.Helper()
	return serveDashboardWith(t, ln, env, baseConfig)
}

// serveDashboardWith is serveDashboard with another configuration file.
func serveDashboardWith(t *testing.T, ln net.Listener, env map[string]string, config string) *syncBuffer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env["T_WEBHOOK"] = goodWebhookSecret
	logs := &syncBuffer{}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: setup.Env{DataDir: filepath.Join(dir, "data"), Getenv: func(k string) string { return env[k] },
		Log: slog.New(slog.NewTextHandler(logs, nil))}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = srv.Close()
	})
	if _, err := srv.Addr(ctx); err != nil {
		t.Fatal(err)
	}
	return logs
}

var signInURL = regexp.MustCompile(`url="?(http://\S+/admin/signin/once\?token=[A-Za-z0-9_-]+)`)

// serve mounts the dashboard; with CLAIMSMITH_DEV_DASHBOARD_SIGNIN=1 on a
// loopback listener it prints a one-time sign-in link that opens a
// session, whose rules page shows the configured pipeline.
func TestServeDashboardDevSignIn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := serveDashboard(t, ln, map[string]string{setup.EnvDevDashboardSignIn: "1"})
	m := signInURL.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no sign-in link in the log:\n%s", logs)
	}
	u, _ := url.Parse(m[1])
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.PostForm(u.Scheme+"://"+u.Host+u.Path, url.Values{"token": {u.Query().Get("token")}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	res, err = c.Get("http://" + ln.Addr().String() + "/admin/rules")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "authorization") || !strings.Contains(string(body), "required-roles") {
		t.Fatalf("rules page after the one-time sign-in: %d\n%s", res.StatusCode, body)
	}
}

// Without the variable, or off loopback, no link is printed.
func TestServeDashboardNoDevSignIn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := serveDashboard(t, ln, map[string]string{})
	res, err := http.Get("http://" + ln.Addr().String() + "/admin/signin")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("dashboard not mounted: %d", res.StatusCode)
	}
	if strings.Contains(logs.String(), "signin/once") {
		t.Fatalf("a sign-in link was printed without %s:\n%s", setup.EnvDevDashboardSignIn, logs)
	}
	// Listening on every interface: refused even with the variable.
	wide, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on 0.0.0.0:", err)
	}
	logs = serveDashboard(t, wide, map[string]string{setup.EnvDevDashboardSignIn: "1"})
	if strings.Contains(logs.String(), "signin/once") || !strings.Contains(logs.String(), "is ignored") {
		t.Fatalf("sign-in link on a non-loopback listener:\n%s", logs)
	}
}

// admin.dashboard.session_max and secure_cookies reach the session cookie.
func TestServeDashboardSessionSettings(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	config := baseConfig + "admin:\n  dashboard:\n    session_idle: 10m\n    session_max: 2h\n    secure_cookies: true\n"
	logs := serveDashboardWith(t, ln, map[string]string{setup.EnvDevDashboardSignIn: "1"}, config)
	m := signInURL.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no sign-in link in the log:\n%s", logs)
	}
	u, _ := url.Parse(m[1])
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(u.Scheme+"://"+u.Host+u.Path, url.Values{"token": {u.Query().Get("token")}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.MaxAge > 0 {
			session = ck
		}
	}
	if session == nil || session.MaxAge != 7200 || !session.Secure {
		t.Fatalf("session cookie %+v (all: %v)", session, res.Header.Values("Set-Cookie"))
	}
}

// admin.dashboard.enabled: false mounts no dashboard: /admin/ answers 404,
// no sign-in link is printed, and the admin API still answers.
func TestServeDashboardDisabled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := serveDashboardWith(t, ln, map[string]string{setup.EnvDevDashboardSignIn: "1"}, baseConfig+"admin:\n  dashboard:\n    enabled: false\n")
	base := "http://" + ln.Addr().String()
	for _, p := range []string{"/admin/", "/admin/signin", "/admin/groups", "/admin/static/dashboard.css"} {
		res, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with the dashboard off: %d, want 404", p, res.StatusCode)
		}
	}
	if strings.Contains(logs.String(), "signin/once") {
		t.Fatalf("a sign-in link was printed for a disabled dashboard:\n%s", logs)
	}
	res, err := http.Get(base + "/api/groups")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin API with the dashboard off: %d, want 401", res.StatusCode)
	}
}
