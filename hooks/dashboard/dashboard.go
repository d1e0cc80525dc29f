package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// Prefix is where the dashboard is mounted.
const Prefix = "/admin/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Keys authenticates the admin key presented at sign-in and lists the keys,
// so a session ends when its key is revoked and follows its scope changes
// (runtime/admin's key stores).
type Keys interface {
	Authenticate(ctx context.Context, secret string) (radmin.Key, error)
	List(ctx context.Context) ([]radmin.Key, error)
}

// Signing is the token signing key set the signing-keys page lists and
// rotates (*token.KeySet); rotation goes through the admin service, which
// audits it.
type Signing = radmin.SigningKeys

// Rules names the serving pipeline's steps (the rules page); nil hides them.
type Rules func() []runtime.StepInfo

// Config wires the dashboard.
type Config struct {
	// Service is the one write path (audited Apply) and the reads.
	Service *radmin.Service
	Keys    Keys
	// Signing, Rules and Metrics feed the signing-keys and rules pages
	// (each may be nil: the page then says it is not available).
	Signing Signing
	Rules   Rules
	Metrics prometheus.Gatherer
	Log     *slog.Logger
	// Now is the clock of session expiry (time.Now when nil).
	Now func() time.Time
	// IdleTimeout ends a session not used for that long (default 30 min);
	// MaxAge ends any session that old (default 12 h).
	IdleTimeout, MaxAge time.Duration
	// SecureCookies marks the session cookie Secure even when the request
	// arrived without TLS (behind a TLS-terminating proxy). A request
	// that arrived over TLS always gets Secure cookies.
	SecureCookies bool
	// TryLogin runs the try-a-login page's dry runs through the serving
	// pipeline (*hooks.Reloader); nil: the page says no pipeline serves.
	TryLogin DryRunner
	// A page that needs more (a profile store, the pipeline) adds a typed
	// field here, documented with the page; New leaves it as given.
}

// Dashboard serves the admin dashboard under Prefix.
type Dashboard struct {
	cfg      Config
	svc      *radmin.Service
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	views    *views
	pages    []Page
	mux      *http.ServeMux
	static   fs.FS
	// devSignIn holds the one-time development sign-in token, if any.
	devSignIn atomic.Pointer[oneTime]
	// history holds the rule metrics' samples (SampleRules).
	history ruleHistory
}

// Defaults of the session lifetimes.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	// MaxBody bounds a dashboard form (a pasted list of ids fits easily);
	// pages that upload more set their own Route.MaxBody.
	MaxBody = 1 << 20
)

// New checks cfg and builds the dashboard with every page.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Service == nil || cfg.Keys == nil {
		return nil, fmt.Errorf("dashboard: Service and Keys are required: %w", runtime.ErrInvalid)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	d := &Dashboard{cfg: cfg, svc: cfg.Service, log: cfg.Log, now: hooks.NowFunc(cfg.Now)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.sessions = newSessions(d.now, cfg.IdleTimeout, cfg.MaxAge)
	st, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: static assets: %w", err)
	}
	d.static = st
	d.pages = d.allPages()
	if d.views, err = parseViews(templateFS, d.pages); err != nil {
		return nil, err
	}
	d.mux = http.NewServeMux()
	if err := d.routes(); err != nil {
		return nil, err
	}
	return d, nil
}

// Route is the dashboard's mount on the server (every path under Prefix).
func (d *Dashboard) Route() hooks.Route {
	return hooks.Route{Pattern: Prefix, Handler: d, MaxBody: -1, Label: "admin"}
}

// ServeHTTP implements http.Handler: the security headers go on every
// answer, static assets included.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	d.mux.ServeHTTP(w, r)
}

// routes mounts the framework's own paths and every page's routes.
func (d *Dashboard) routes() (err error) {
	defer func() {
		// ServeMux panics on conflicting patterns: a page added twice is a
		// start-up error naming it.
		if p := recover(); p != nil {
			err = fmt.Errorf("dashboard: routes: %v: %w", p, runtime.ErrInvalid)
		}
	}()
	d.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", staticHandler(d.static)))
	d.mux.HandleFunc("GET "+Prefix+"signin", d.signInPage)
	d.mux.HandleFunc("POST "+Prefix+"signin", d.signIn)
	d.mux.HandleFunc("GET "+Prefix+"signin/once", d.oneTimePage)
	d.mux.HandleFunc("POST "+Prefix+"signin/once", d.oneTimeSignIn)
	d.mux.Handle("POST "+Prefix+"signout", d.handle(Route{Method: http.MethodPost, Handle: d.signOut}))
	d.mux.Handle("GET "+Prefix+"{$}", d.handle(Route{Method: http.MethodGet, Scope: radmin.ScopeRead, Handle: d.home}))
	d.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, nil, fmt.Errorf("no dashboard page at %s: %w", r.URL.Path, runtime.ErrNotFound))
	})
	for _, p := range d.pages {
		for _, rt := range p.Routes {
			if !strings.HasPrefix(rt.Path, Prefix) {
				return fmt.Errorf("dashboard: page %q: route %s is not under %s: %w", p.Name, rt.Path, Prefix, runtime.ErrInvalid)
			}
			if rt.Method == http.MethodPost && rt.Scope == radmin.ScopeRead {
				// Only reads may run on the read scope; a POST changes
				// something, so it needs a write scope.
				return fmt.Errorf("dashboard: page %q: POST %s needs a write scope: %w", p.Name, rt.Path, runtime.ErrInvalid)
			}
			d.mux.Handle(rt.Method+" "+rt.Path, d.handle(rt))
		}
	}
	return nil
}

// home sends a signed-in user to the first page.
func (d *Dashboard) home(w http.ResponseWriter, r *http.Request, _ *Call) error {
	target := Prefix + "groups"
	if len(d.pages) > 0 {
		target = d.pages[0].Href
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// staticHandler serves the embedded assets; they change only with the
// binary, so a short cache is enough and no fingerprinting is needed.
func staticHandler(st fs.FS) http.Handler {
	fsrv := http.FileServerFS(st)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "private, max-age=300")
		fsrv.ServeHTTP(w, r)
	})
}

// errorStatus maps an error to its status through the one mapping the
// server has (hooks.StatusOf).
func errorStatus(err error) int {
	st, _ := hooks.StatusOf(err)
	return st
}

// isConflict reports a lost revision check: the page's data changed under
// the form.
func isConflict(err error) bool {
	var ce *runtime.ConflictError
	return errors.As(err, &ce)
}
