package login_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
)

// syncBuffer is a bytes.Buffer the server's goroutines may write to.
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

// TestLoginLogLevel: at the default level (info) an allowed login writes no
// per-login line (it cost 3–4 % of a login's CPU; the decision counters
// count it), a denied one does; at debug both do.
func TestLoginLogLevel(t *testing.T) {
	for _, c := range []struct {
		level   slog.Level
		allowed bool
		logged  bool
	}{
		{slog.LevelInfo, true, false},
		{slog.LevelInfo, false, true},
		{slog.LevelDebug, true, true},
	} {
		var out syncBuffer
		run := enricherFunc(func(context.Context, *runtime.Event) (*runtime.Result, error) {
			d := runtime.Decision{Allowed: c.allowed}
			if !c.allowed {
				d.Reason, d.Code, d.Rule = "no", "access_denied", "required-roles"
			}
			return &runtime.Result{Decision: d}, nil
		})
		h := &login.Handler{Run: run, Dialect: &login.Hydra{Keys: hooks.NewKeySet(hydraKey), Namespace: hookstest.NS},
			Log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: c.level}))}
		srv := httptest.NewServer(h)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(readPayload(t, "hydra/authorization-code.request.json")))
		req.Header.Set("Authorization", "Bearer "+hydraKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if got := strings.Contains(out.String(), "msg=login "); got != c.logged {
			t.Errorf("level %s, allowed %v (HTTP %d): login line written = %v, want %v\n%s", c.level, c.allowed, resp.StatusCode, got, c.logged, out.String())
		}
	}
}
