package hooks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// Route is one endpoint of the server.
type Route struct {
	// Pattern is a net/http ServeMux pattern, e.g. "POST /oauth2/introspect".
	Pattern string
	Handler http.Handler
	// MaxBody caps the request body before the handler runs (0:
	// DefaultMaxBody; negative: the handler applies its own limit, as the
	// reloadable hook routes do with their generation's).
	MaxBody int64
	// Label names the caller family the route serves (an IdP dialect's
	// name, "oauth", "admin", "ops", …): the dialect label of the HTTP
	// metrics. The package that builds a route sets it; "" counts as "other".
	Label string
}

// WithLabel returns routes with Label set to label where none is set.
func WithLabel(label string, routes ...Route) []Route {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		if rt.Label == "" {
			rt.Label = label
		}
		out[i] = rt
	}
	return out
}

// ReadyCheck is one dependency /readyz asks about (key set, store, cache…).
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
	// Degrades marks a dependency logins can do without (the policy cache:
	// logins fall back to the store). Its failure makes /readyz answer 200
	// with status "degraded", so a load balancer keeps the node; any other
	// failure (store unreachable, keys not loaded, rules not compiled) is
	// 503 "unavailable".
	Degrades bool
}

// NewMux mounts the routes (nil handlers skipped), each behind its body
// limit, plus GET /healthz (the process serves) and GET /readyz: 200
// "ready" when every check passes, 200 "degraded" when only Degrades checks
// fail, 503 "unavailable" otherwise. Two routes with the same pattern are an
// error, not a panic.
func NewMux(routes []Route, checks []ReadyCheck, log *slog.Logger) (mux *http.ServeMux, err error) {
	mux = http.NewServeMux()
	defer func() {
		// ServeMux panics on conflicting patterns; turn that into an error
		// naming them at start-up.
		if p := recover(); p != nil {
			mux, err = nil, fmt.Errorf("%w: routes: %v", runtime.ErrInvalid, p)
		}
	}()
	for _, rt := range routes {
		if rt.Handler == nil {
			continue
		}
		mux.Handle(rt.Pattern, limitBody(rt.Handler, rt.MaxBody))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed, degraded := map[string]string{}, map[string]string{}
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				if c.Degrades {
					degraded[c.Name] = err.Error()
				} else {
					failed[c.Name] = err.Error()
				}
				log.WarnContext(ctx, "not ready", "check", c.Name, "degrades_only", c.Degrades, "err", err)
			}
		}
		switch {
		case len(failed) > 0:
			body := map[string]any{"status": "unavailable", "failed": failed}
			if len(degraded) > 0 {
				body["degraded"] = degraded
			}
			WriteJSON(w, http.StatusServiceUnavailable, body)
		case len(degraded) > 0:
			WriteJSON(w, http.StatusOK, map[string]any{"status": "degraded", "degraded": degraded})
		default:
			WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	return mux, nil
}

// limitBody applies LimitBody before the handler runs.
func limitBody(h http.Handler, limit int64) http.Handler {
	if limit < 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := LimitBody(w, r, limit); err != nil {
			WriteError(w, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ServerConfig are the HTTP server's settings. Zero values get defaults
// suited to IdPs calling with keep-alive connections.
type ServerConfig struct {
	Addr string `yaml:"addr"`
	// TLSCertFile and TLSKeyFile enable HTTPS (both or neither).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// ReadHeaderTimeout (5s), ReadTimeout (15s), WriteTimeout (30s),
	// IdleTimeout (120s: IdPs reuse connections; Hydra's p50 suffered without
	// keep-alive), ShutdownTimeout (20s: in-flight requests finish on SIGTERM).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	// MaxHeaderBytes (64 KiB: bearer tokens with large claim sets).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
}

func (c *ServerConfig) defaults() error {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ReadHeaderTimeout, 5*time.Second)
	def(&c.ReadTimeout, 15*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.IdleTimeout, 120*time.Second)
	def(&c.ShutdownTimeout, 20*time.Second)
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return &runtime.ValidationError{Entity: "server", Field: "tls_cert_file/tls_key_file", Reason: "set both or neither"}
	}
	return nil
}

// Server is claimsmith's HTTP server with graceful shutdown.
type Server struct {
	cfg  ServerConfig
	srv  *http.Server
	log  *slog.Logger
	tls  *tls.Config
	addr chan net.Addr
}

// NewServer checks the configuration and loads the TLS pair when set, so a
// bad certificate fails at start-up with the file named.
func NewServer(cfg ServerConfig, h http.Handler, log *slog.Logger) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, addr: make(chan net.Addr, 1)}
	if cfg.TLSCertFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: server: TLS pair %s / %s: %v", runtime.ErrInvalid, cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		TLSConfig:         s.tls,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr returns the address the server listens on once it does (useful with
// port 0); it blocks until then or until ctx ends.
func (s *Server) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case a := <-s.addr:
		s.addr <- a
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run listens and serves until ctx ends (SIGTERM in `claimsmith serve`), then
// stops accepting, lets in-flight requests finish within ShutdownTimeout and
// returns nil; a listen or serve failure is returned.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.addr <- ln.Addr()
	scheme := "http"
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
		scheme = "https"
	}
	s.srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	s.log.InfoContext(ctx, "listening", "addr", ln.Addr().String(), "scheme", scheme)
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.log.InfoContext(ctx, "shutting down", "grace", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("server: graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// RoutePatterns lists the mounted patterns, sorted (for logs and --help).
func RoutePatterns(routes []Route) []string {
	var out []string
	for _, r := range routes {
		if r.Handler != nil {
			out = append(out, r.Pattern)
		}
	}
	sort.Strings(out)
	return out
}
