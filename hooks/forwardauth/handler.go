package forwardauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// Deps are what New needs besides the configuration.
type Deps struct {
	// Issuer is claimsmith's own issuer; Keys and Revocations its key set
	// and revocation list. Used when Config.Issuer is empty.
	Issuer      string
	Keys        guard.KeySource
	Revocations guard.Revocations
	// Getenv reads secrets (default os.Getenv).
	Getenv func(string) string
	// BaseDir resolves relative page files.
	BaseDir string
	Now     func() time.Time
	Logger  *slog.Logger
	// Client is the HTTP client for a remote issuer and introspection.
	Client *http.Client
}

// Handler serves GET /hooks/forward-auth.
type Handler struct {
	g       *guard.Guard
	headers Headers
	log     *slog.Logger
}

// New validates cfg and builds the handler.
func New(cfg Config, deps Deps) (*Handler, error) {
	if !cfg.Enabled {
		return nil, fmt.Errorf("%w: forward_auth is not enabled", runtime.ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Getenv == nil {
		deps.Getenv = os.Getenv
	}
	leeway, _ := cfg.leeway()
	ttl, _ := cfg.cacheTTL()
	vc := guard.VerifierConfig{Issuer: cfg.Issuer, Audiences: cfg.Audiences, AnyAudience: cfg.AnyAudience,
		Algorithms: cfg.Algorithms, Leeway: leeway, Lenient: cfg.Lenient}
	ac := guard.AuthConfig{CacheTTL: ttl, Now: deps.Now, Logger: deps.Logger}
	var keys guard.KeySource
	if cfg.Issuer == "" {
		if deps.Keys == nil || deps.Issuer == "" {
			return nil, invalid("issuer", "claimsmith's own keys are not available here: configure an issuer")
		}
		vc.Issuer, keys, ac.Revocations = deps.Issuer, deps.Keys, deps.Revocations
	} else {
		rk, err := guard.NewRemoteKeys(guard.RemoteKeysConfig{Issuer: cfg.Issuer, JWKSURL: cfg.JWKSURL, Client: deps.Client, Now: deps.Now, Logger: deps.Logger})
		if err != nil {
			return nil, err
		}
		keys = rk
	}
	var err error
	if ac.Verifier, err = guard.NewJWTVerifier(vc, keys, deps.Now); err != nil {
		return nil, err
	}
	if in := cfg.Introspection; in != nil {
		secret := deps.Getenv(in.ClientSecretEnv)
		if secret == "" {
			return nil, invalid("introspection.client_secret_env", fmt.Sprintf("$%s is empty", in.ClientSecretEnv))
		}
		if ac.Introspector, err = guard.NewIntrospector(guard.IntrospectionConfig{URL: in.URL, ClientID: in.ClientID, ClientSecret: secret, Params: in.Params, Client: deps.Client}); err != nil {
			return nil, err
		}
		ac.Introspect = in.Always
	}
	ac.Paths = guard.DefaultClaimPaths(cfg.Namespace)
	if cfg.ClaimPaths != nil {
		ac.Paths = *cfg.ClaimPaths
	}
	if cfg.Namespace != "" {
		ac.OverflowClaim = cfg.Namespace + "authz_overflow"
	}
	auth, err := guard.NewAuthenticator(ac)
	if err != nil {
		return nil, err
	}
	g, err := guard.New(guard.Options{Auth: auth, RuleSets: cfg.RuleSets, BaseDir: deps.BaseDir, Cookie: cfg.Cookie, Logger: deps.Logger})
	if err != nil {
		return nil, err
	}
	h := cfg.Headers
	h.defaults()
	return &Handler{g: g, headers: h, log: deps.Logger}, nil
}

// errBadRequest: the gateway did not say which request it authorizes.
var errBadRequest = errors.New("forward-auth: the gateway sent no original URI (X-Forwarded-Uri or X-Original-URI)")

// Input rebuilds the original request from the gateway's headers:
// X-Forwarded-Method / X-Original-Method, X-Forwarded-Uri / X-Original-URI,
// X-Forwarded-Host (else Host), X-Forwarded-Proto, X-Real-IP.
func (h *Handler) Input(r *http.Request) (guard.Input, error) {
	in := h.g.InputFrom(r)
	hd := r.Header
	in.Method = firstHeader(hd, "X-Forwarded-Method", "X-Original-Method")
	if in.Method == "" {
		in.Method = http.MethodGet
	}
	in.Method = strings.ToUpper(in.Method)
	if !validMethod(in.Method) {
		return in, fmt.Errorf("%w: forward-auth: method %q", runtime.ErrInvalid, in.Method)
	}
	uri := firstHeader(hd, "X-Forwarded-Uri", "X-Original-URI", "X-Original-Url")
	if uri == "" {
		return in, fmt.Errorf("%w: %w", runtime.ErrInvalid, errBadRequest)
	}
	p, q, err := ParseURI(uri)
	if err != nil {
		return in, err
	}
	in.Path, in.Query = p, q
	if host := hd.Get("X-Forwarded-Host"); host != "" {
		in.Host = host
	}
	in.TLS = strings.EqualFold(hd.Get("X-Forwarded-Proto"), "https")
	if ip := hd.Get("X-Real-IP"); ip != "" {
		in.RemoteIP = ip
	}
	in.HTTP = nil
	return in, nil
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return false
		}
	}
	return true
}

// ParseURI splits an original request URI ("/a%20b/c?x=1") into its
// decoded path and raw query. An absolute URL is accepted for its path.
func ParseURI(uri string) (p, query string, err error) {
	if len(uri) > 8192 {
		return "", "", fmt.Errorf("%w: forward-auth: URI of %d bytes", runtime.ErrInvalid, len(uri))
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return "", "", fmt.Errorf("%w: forward-auth: URI %q: %v", runtime.ErrInvalid, uri, err)
	}
	p = u.Path
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		return "", "", fmt.Errorf("%w: forward-auth: URI %q has no absolute path", runtime.ErrInvalid, uri)
	}
	return p, u.RawQuery, nil
}

// ServeHTTP answers the gateway. ?redirect=true (Traefik, Caddy) turns a
// browser's login 401 into the 302 itself; nginx's auth_request needs the
// 401 and redirects with the Location it carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in, err := h.Input(r)
	if err != nil {
		h.log.WarnContext(r.Context(), "forward-auth: bad request from the gateway", "err", err)
		http.Error(w, "forward-auth: "+err.Error(), http.StatusBadRequest)
		return
	}
	out := h.g.Check(r.Context(), &in)
	if out.Status == http.StatusOK {
		h.identity(w.Header(), out.Principal)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	h.log.DebugContext(r.Context(), "forward-auth: refused", "method", in.Method, "path", in.Path, "status", out.Status, "rule", out.Rule, "err", out.Err)
	if out.Status == http.StatusFound && r.URL.Query().Get("redirect") != "true" {
		out.Status = http.StatusUnauthorized
		// Keep Location and the cookie: the gateway reads them (nginx:
		// auth_request_set) and redirects itself.
	}
	h.g.Write(w, out)
}

// identity sets the identity headers, values escaped.
func (h *Handler) identity(hd http.Header, p *guard.Principal) {
	if p == nil {
		return
	}
	set := func(name string, vals ...string) {
		if name == "" {
			return
		}
		hd.Set(name, JoinEscaped(vals))
	}
	set(h.headers.Subject, p.Subject)
	set(h.headers.Groups, p.Groups...)
	set(h.headers.Roles, p.Roles...)
	set(h.headers.Permissions, p.Permissions...)
	set(h.headers.Scopes, p.Scopes...)
}

// JoinEscaped joins values with "," after percent-encoding, in each value,
// "%", ",", '"', and every byte outside printable ASCII: a value can neither
// split into two nor smuggle a header line. Decode each item with
// url.PathUnescape.
func JoinEscaped(vals []string) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		for j := 0; j < len(v); j++ {
			c := v[j]
			if c <= ' ' || c >= 0x7f || c == '%' || c == ',' || c == '"' {
				fmt.Fprintf(&b, "%%%02X", c)
				continue
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Switch serves the current handler and lets a reload swap it atomically;
// requests in flight finish on the handler they started with. With no
// handler (forward_auth disabled) it answers 404.
type Switch struct{ cur atomic.Pointer[Handler] }

// Store swaps in h (nil disables the endpoint).
func (s *Switch) Store(h *Handler) { s.cur.Store(h) }

// ServeHTTP implements http.Handler.
func (s *Switch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.cur.Load()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// TokenKeys adapts claimsmith's key set to guard.KeySource: keys that may
// verify now (active or retired).
type TokenKeys struct{ Keys *token.KeySet }

// Key implements guard.KeySource.
func (t TokenKeys) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	k, _, ok := t.Keys.VerificationKey(kid)
	if !ok {
		return nil, fmt.Errorf("%w: kid %q", guard.ErrUnknownKey, kid)
	}
	jwk := k.PublicJWK()
	return &jwk, nil
}
