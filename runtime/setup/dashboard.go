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
func newDashboard(env Env, svc *admin.Service, as AdminStores, deps dashboardDeps) (*dashboard.Dashboard, error) {
	return dashboard.New(dashboard.Config{Service: svc, Keys: as.Keys, Signing: deps.signing, Rules: deps.rules,
		Metrics: deps.metrics, Log: env.Log, Now: env.Now, TryLogin: deps.tryLogin})
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
