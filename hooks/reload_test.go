package hooks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

// The Reloader on its own, with stand-in handlers; hooks/login tests it
// with the real dialects and pipelines.

const postLogin = "POST /hooks/v1/post-login"

// reloadRoutes are the routes the reloaders of these tests serve.
func reloadRoutes() []hooks.Route {
	return []hooks.Route{{Pattern: postLogin, Label: "native"}, {Pattern: "POST /hooks/hydra/token", Label: "hydra"}}
}

// TestReloaderRejectsBrokenBuild exercises Reload directly: the error
// matches ErrInvalid for a bad configuration and ErrConflict otherwise.
func TestReloaderRejectsBrokenBuild(t *testing.T) {
	var fail atomic.Pointer[error]
	build := func(context.Context) (*hooks.HookSet, error) {
		if err := fail.Load(); err != nil {
			return nil, *err
		}
		return &hooks.HookSet{}, nil
	}
	r, err := hooks.NewReloader(t.Context(), reloadRoutes(), build, nil, hooks.ReloaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(t.Context())
	bad := fmt.Errorf("%w: claimsmith.yaml:3: pipeline.rules[0]: unknown key", runtime.ErrInvalid)
	fail.Store(&bad)
	if _, err := r.Reload(t.Context()); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("bad file: %v, want ErrInvalid", err)
	}
	broken := errors.New("open module.wasm: permission denied")
	fail.Store(&broken)
	if _, err := r.Reload(t.Context()); !errors.Is(err, runtime.ErrConflict) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("failed build: %v, want ErrConflict with the cause", err)
	}
	if r.Generation() != 1 {
		t.Errorf("generation %d after rejected reloads", r.Generation())
	}
	// Routes not in the set answer 404 (JSON), without running anything.
	mux, err := hooks.NewMux(r.Routes(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/hydra/token", bytes.NewReader([]byte(`{}`))))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "not configured") {
		t.Errorf("unconfigured dialect: %d %s", w.Code, w.Body)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(t.Context()); !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("Check after Close: %v", err)
	}
	if _, err := r.Reload(t.Context()); !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("Reload after Close: %v", err)
	}
}

// TestReadyzDegraded: a failing Degrades check (the policy cache) keeps
// /readyz at 200 with status degraded; any other failing check is 503.
func TestReadyzDegraded(t *testing.T) {
	cacheDown := func(context.Context) error { return fmt.Errorf("policy cache degraded: %w", runtime.ErrUnavailable) }
	storeDown := func(context.Context) error { return errors.New("store: connection refused") }
	ok := func(context.Context) error { return nil }
	for _, c := range []struct {
		name   string
		checks []hooks.ReadyCheck
		status int
		body   string
	}{
		{"all up", []hooks.ReadyCheck{{Name: "store", Check: ok}, {Name: "cache", Check: ok, Degrades: true}}, 200, `"status":"ready"`},
		{"cache down", []hooks.ReadyCheck{{Name: "store", Check: ok}, {Name: "cache", Check: cacheDown, Degrades: true}}, 200, `"status":"degraded"`},
		{"store down", []hooks.ReadyCheck{{Name: "store", Check: storeDown}, {Name: "cache", Check: ok, Degrades: true}}, 503, `"store":"store: connection refused"`},
		{"both down", []hooks.ReadyCheck{{Name: "store", Check: storeDown}, {Name: "cache", Check: cacheDown, Degrades: true}}, 503, `"degraded":{"cache"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			mux, err := hooks.NewMux(nil, c.checks, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if w.Code != c.status || !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("/readyz = %d %s, want %d with %s", w.Code, w.Body, c.status, c.body)
			}
		})
	}
}

// BenchmarkReloaderForward is what the reload indirection adds to every
// hook request: load the current generation, take and drop a reference,
// apply its body limit. Parallel, as logins arrive.
func BenchmarkReloaderForward(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	r, err := hooks.NewReloader(b.Context(), reloadRoutes(), func(context.Context) (*hooks.HookSet, error) {
		return &hooks.HookSet{Handlers: map[string]http.Handler{postLogin: h}}, nil
	}, nil, hooks.ReloaderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(b.Context())
	var fwd http.Handler
	for _, rt := range r.Routes() {
		if rt.Pattern == postLogin {
			fwd = rt.Handler
		}
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"direct", h}, {"forwarded", fwd}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				req := httptest.NewRequest(http.MethodPost, "/hooks/v1/post-login", http.NoBody)
				for pb.Next() {
					c.h.ServeHTTP(w, req)
				}
			})
		})
	}
}

// TestReloadBodyLimit: the reloadable routes apply the serving generation's
// hooks.max_body, declared or streamed, and a reload can change it.
func TestReloadBodyLimit(t *testing.T) {
	var limit atomic.Int64
	limit.Store(100)
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			hooks.WriteError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	r, err := hooks.NewReloader(t.Context(), reloadRoutes(), func(context.Context) (*hooks.HookSet, error) {
		return &hooks.HookSet{Handlers: map[string]http.Handler{postLogin: read}, MaxBody: limit.Load()}, nil
	}, nil, hooks.ReloaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(t.Context())
	mux, err := hooks.NewMux(r.Routes(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	post := func(n int, chunked bool) int {
		req := httptest.NewRequest(http.MethodPost, "/hooks/v1/post-login", bytes.NewReader(make([]byte, n)))
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(bytes.NewReader(make([]byte, n)))
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	for _, c := range []struct {
		n       int
		chunked bool
		want    int
	}{{100, false, 204}, {101, false, 413}, {101, true, 413}, {100, true, 204}} {
		if got := post(c.n, c.chunked); got != c.want {
			t.Errorf("limit 100, %d bytes (chunked %v): %d, want %d", c.n, c.chunked, got, c.want)
		}
	}
	limit.Store(1000)
	if _, err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := post(500, false); got != 204 {
		t.Errorf("after raising max_body: %d", got)
	}
}
