package setup

import (
	"context"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/dashboard"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
)

// EnvDevDashboardSignIn, set to 1, makes serve print a one-time dashboard
// sign-in link at start-up (make run sets it). It is honoured only on a
// loopback listener: the link grants every admin scope to whoever opens
// it first, within DevSignInTTL.
const EnvDevDashboardSignIn = "CLAIMSMITH_DEV_DASHBOARD_SIGNIN"

// DevSignInTTL is how long the one-time sign-in link works.
const DevSignInTTL = 15 * time.Minute

// AdminConfig is the admin section: the dashboard at /admin/ beside the
// admin API.
type AdminConfig struct {
	Dashboard DashboardConfig `yaml:"dashboard"`
}

// DashboardConfig is admin.dashboard.
type DashboardConfig struct {
	// Enabled mounts the dashboard (nil: on, as the admin API is); off,
	// /admin/ answers 404 and the admin API stays.
	Enabled *bool `yaml:"enabled"`
	// SessionIdle ends a session not used for that long, SessionMax any
	// session that old (0: dashboard.DefaultIdleTimeout / DefaultMaxAge).
	SessionIdle time.Duration `yaml:"session_idle"`
	SessionMax  time.Duration `yaml:"session_max"`
	// SecureCookies marks the session cookie Secure on plain-HTTP requests
	// too, for a server behind a TLS-terminating proxy (requests over TLS
	// always get it).
	SecureCookies bool `yaml:"secure_cookies"`
}

// on reports whether the dashboard is mounted.
func (d DashboardConfig) on() bool { return d.Enabled == nil || *d.Enabled }

// lifetimes are the session lifetimes with their defaults.
func (d DashboardConfig) lifetimes() (idle, maxAge time.Duration) {
	idle, maxAge = d.SessionIdle, d.SessionMax
	if idle == 0 {
		idle = dashboard.DefaultIdleTimeout
	}
	if maxAge == 0 {
		maxAge = dashboard.DefaultMaxAge
	}
	return idle, maxAge
}

// validateAdmin checks admin.dashboard: lifetimes positive, the idle one
// within the absolute one (a longer idle timeout would never apply).
func (c *Config) validateAdmin() error {
	d := c.Admin.Dashboard
	at := keyPath{"admin", "dashboard"}
	for _, x := range []struct {
		key string
		v   time.Duration
	}{{"session_idle", d.SessionIdle}, {"session_max", d.SessionMax}} {
		if x.v < 0 {
			return c.bad(at.with(x.key), invalidf("is %s, must be positive (0 or unset: the default)", x.v))
		}
		if x.v > 0 && x.v < time.Minute {
			return c.bad(at.with(x.key), invalidf("is %s, must be at least 1m: shorter sessions end while a page is being filled in", x.v))
		}
	}
	if idle, maxAge := d.lifetimes(); idle > maxAge {
		key := at.with("session_idle")
		if d.SessionIdle == 0 {
			key = at.with("session_max")
		}
		return c.bad(key, invalidf("session_idle (%s) is longer than session_max (%s)", idle, maxAge))
	}
	return nil
}

// dashboardDeps is what the dashboard reads besides the admin service.
type dashboardDeps struct {
	signing dashboard.Signing
	rules   dashboard.Rules
	metrics prometheus.Gatherer
	// tryLogin runs the try-a-login page's dry runs (nil: no pipeline).
	tryLogin dashboard.DryRunner
}

// newDashboard builds the dashboard on the admin API's service (the one
// write path) and the admin key store.
func newDashboard(env Env, cfg DashboardConfig, svc *admin.Service, as AdminStores, deps dashboardDeps) (*dashboard.Dashboard, error) {
	idle, maxAge := cfg.lifetimes()
	return dashboard.New(dashboard.Config{Service: svc, Keys: as.Keys, Signing: deps.signing, Rules: deps.rules,
		Metrics: deps.metrics, Log: env.Log, Now: env.Now, TryLogin: deps.tryLogin,
		IdleTimeout: idle, MaxAge: maxAge, SecureCookies: cfg.SecureCookies})
}

// dashboardRoute mounts the dashboard with the API's label.
func dashboardRoute(d *dashboard.Dashboard) hooks.Route { return d.Route() }

// announceDevSignIn prints the one-time sign-in link when the environment
// asks for it and ln is a loopback listener.
func (s *Server) announceDevSignIn(ctx context.Context, ln net.Listener) {
	if s.dashboard == nil || s.env.Getenv(EnvDevDashboardSignIn) != "1" {
		return
	}
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		s.env.Log.WarnContext(ctx, "dashboard: "+EnvDevDashboardSignIn+" is ignored: the server does not listen on loopback only", "addr", ln.Addr().String())
		return
	}
	scheme := "http"
	if s.eff.Server.TLSCertFile != "" {
		scheme = "https"
	}
	path := s.dashboard.EnableOneTimeSignIn(DevSignInTTL)
	s.env.Log.WarnContext(ctx, "dashboard: one-time sign-in for this development server (works once, for "+DevSignInTTL.String()+")",
		"url", scheme+"://"+ln.Addr().String()+path)
}

// pipelineSteps is the serving pipeline's steps, for the rules page.
func (s *Server) pipelineSteps() []runtime.StepInfo {
	if p := s.steps.Load(); p != nil {
		return *p
	}
	return nil
}
