package setup

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

// TestReloadAbandonedAtItsDeadline: a reload whose build never returns
// (here it ignores its context altogether) is rejected at
// server.reload_timeout, so the reloader's lock is released; what the
// build makes when it finally returns is released, never served. Shutting
// down abandons a reload the same way, without waiting for the timeout.
func TestReloadAbandonedAtItsDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		stop    bool // shut down while the build runs
		want    error
	}{
		{"timeout", 50 * time.Millisecond, false, runtime.ErrTimeout},
		{"shutdown", time.Hour, true, runtime.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Server{eff: &Config{Server: ServerConfig{ReloadTimeout: tc.timeout}}}
			s.builds, s.stopBuilds = context.WithCancel(context.Background())
			defer s.stopBuilds()
			started, finish, released := make(chan struct{}), make(chan struct{}), make(chan struct{})
			build := func(context.Context, bool) (builtHooks, error) {
				close(started)
				<-finish // deaf to its context
				return builtHooks{set: &hooks.HookSet{Release: func() { close(released) }}}, nil
			}
			type result struct {
				b   builtHooks
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, err := s.reloadWithin(context.Background(), build)
				done <- result{b, err}
			}()
			<-started
			if tc.stop {
				s.stopBuilds()
			}
			var res result
			select {
			case res = <-done:
			case <-time.After(time.Minute):
				t.Fatal("the reload waited for its build")
			}
			if !errors.Is(res.err, tc.want) || res.b.set != nil {
				t.Fatalf("reload: %v, %+v; want an error matching %v and no hook set", res.err, res.b, tc.want)
			}
			t.Log(res.err)
			close(finish)
			select {
			case <-released:
			case <-time.After(time.Minute):
				t.Fatal("the abandoned build's hook set was never released")
			}
		})
	}
}

func TestReloadTimeoutConfig(t *testing.T) {
	t.Parallel()
	c, err := Parse("c.yaml", []byte("server:\n  reload_timeout: -1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(context.Background(), Env{})
	if want := `c.yaml:2: key "server.reload_timeout": must not be negative`; err == nil || !errors.Is(err, runtime.ErrInvalid) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want prefix %s", err, want)
	}
	c, err = Parse("c.yaml", []byte("server:\n  reload_timeout: 90s\n"))
	if err != nil || c.Server.reloadTimeout() != 90*time.Second {
		t.Fatalf("reload_timeout 90s: %v, %v", err, c)
	}
	if d := (ServerConfig{}).reloadTimeout(); d != DefaultReloadTimeout {
		t.Fatalf("default reload timeout %v", d)
	}
}
