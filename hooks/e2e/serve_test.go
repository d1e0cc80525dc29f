package e2e_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

// served is claimsmith as `claimsmith serve` builds it (runtime/setup from
// a configuration file and a data dir), serving on loopback in this
// process.
type served struct {
	srv  *setup.Server
	url  string
	log  *syncBuffer
	stop func() error // stops serving (graceful), idempotent
}

// serveConfig writes conf as claimsmith.yaml in dir, loads the test
// document into the data dir's store, creates admin keys (name → scopes;
// their secrets are returned by name), and serves at the configuration's
// server.addr until stop or the end of the test. env is the environment
// secrets are read from.
func serveConfig(t *testing.T, dir, conf string, env map[string]string, keys map[string][]string) (*served, string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	senv := setup.Env{DataDir: filepath.Join(dir, "data"), Getenv: func(k string) string { return env[k] },
		Log: slog.New(slog.NewTextHandler(log, nil))}
	secrets := map[string]string{}
	if len(keys) > 0 {
		b, err := setup.OpenBackends(cfg, senv)
		if err != nil {
			t.Fatal(err)
		}
		as, err := b.Admin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, scopes := range keys {
			if _, secrets[name], err = as.Keys.Create(ctx, name, scopes); err != nil {
				t.Fatal(err)
			}
		}
		_ = b.Close()
	}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: senv})
	if err != nil {
		t.Fatal(err)
	}
	doc := hookstest.Document(hookstest.PortalClient, hookstest.BatchClient)
	if _, err := srv.Store().Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	var stopErr error
	stopped := false
	s := &served{srv: srv, url: "http://" + ln.Addr().String(), log: log, stop: func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = srv.Close()
		if t.Failed() {
			t.Logf("claimsmith log:\n%s", log.String())
		}
	})
	waitHTTP(t, s.url+"/readyz", 30*time.Second)
	return s, path, secrets
}

func waitHTTP(t *testing.T, u string, max time.Duration) {
	t.Helper()
	deadline := time.Now().Add(max)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s (%v)", u, max, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
