package guard

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// Options configure a Guard.
type Options struct {
	// Auth verifies tokens. Required.
	Auth *Authenticator
	// RuleSets are the path rules (Middleware and Check). None: Middleware
	// only authenticates, routes decide with Protect.
	RuleSets []RuleSetConfig
	// BaseDir resolves relative page files of the rule sets.
	BaseDir string
	// Matrix settles route votes: runtime.Matrix, the pipeline's.
	Matrix runtime.Matrix
	// Authorizers vote on every protected route before its own voters
	// (Casbin, WebAssembly, your own).
	Authorizers []Voter
	// Cookie, when set, names a cookie that carries the token for browsers
	// (the Authorization header wins when both are present).
	Cookie string
	// Realm is the WWW-Authenticate realm (optional).
	Realm  string
	Logger *slog.Logger
}

// Guard authenticates requests and enforces path rules and route voters.
// Safe for concurrent use; build a new one to change the configuration.
type Guard struct {
	auth   *Authenticator
	sets   []ruleSet
	matrix runtime.Matrix
	global []Voter
	cookie string
	realm  string
	log    *slog.Logger
}

// New checks opts and compiles the rule sets.
func New(opts Options) (*Guard, error) {
	if opts.Auth == nil {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "auth", Reason: "required"}
	}
	sets, err := compileRuleSets(opts.RuleSets, opts.BaseDir)
	if err != nil {
		return nil, err
	}
	if opts.Cookie != "" && !validCookieName(opts.Cookie) {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "cookie", Reason: "not a cookie name"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{auth: opts.Auth, sets: sets, matrix: opts.Matrix, global: opts.Authorizers,
		cookie: opts.Cookie, realm: opts.Realm, log: opts.Logger}, nil
}

// Authenticator returns the guard's authenticator.
func (g *Guard) Authenticator() *Authenticator { return g.auth }

// Input is a request as the guard sees it: from net/http, or rebuilt from a
// gateway's X-Forwarded-*/X-Original-* headers.
type Input struct {
	Method   string
	Host     string
	Path     string // decoded path
	Query    string // raw query, without '?'
	Accept   string
	TLS      bool
	RemoteIP string
	// Token is the bearer token ("" when none); Malformed says an
	// Authorization header was present but not a bearer header.
	Token     string
	Malformed bool
	HTTP      *http.Request
}

// Outcome is the guard's answer, written by Write (or translated by
// forward-auth into headers for the gateway).
type Outcome struct {
	// Status is 200 (go on), 302 (login redirect), 401, 403 or 503.
	Status    int
	Principal *Principal
	// Err is the reason of a refusal (*AuthError, *ForbiddenError, or an
	// error matching runtime.ErrUnavailable).
	Err error
	// Location and ReturnCookie are set for a browser that must log in.
	Location     string
	ReturnCookie *http.Cookie
	// Page is an HTML body to serve (login page, forbidden page); PageStatus
	// is its status.
	Page       []byte
	PageStatus int
	// Challenge is the WWW-Authenticate value of a 401 (and of a 403 for
	// insufficient_scope).
	Challenge string
	// Rule names the matched rule set and rule, for logs.
	Rule string
}

// InputFrom reads r.
func (g *Guard) InputFrom(r *http.Request) Input {
	in := Input{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery,
		Accept: r.Header.Get("Accept"), TLS: r.TLS != nil, RemoteIP: remoteIP(r.RemoteAddr), HTTP: r}
	in.Token, in.Malformed = BearerToken(r.Header.Get("Authorization"))
	if in.Token == "" && !in.Malformed && g.cookie != "" {
		if c, err := r.Cookie(g.cookie); err == nil {
			in.Token = c.Value
		}
	}
	return in
}

func remoteIP(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && !strings.HasSuffix(addr, "]") {
		addr = addr[:i]
	}
	return strings.Trim(addr, "[]")
}

// BearerToken reads an Authorization header (RFC 6750 §2.1: the scheme is
// case-insensitive, one space, a b64token). malformed is true when a header
// is present and is not a bearer header.
func BearerToken(h string) (tok string, malformed bool) {
	if h == "" {
		return "", false
	}
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", true
	}
	tok = strings.TrimLeft(h[7:], " ")
	if tok == "" || len(tok) > MaxTokenBytes {
		return "", true
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/=", c) >= 0) {
			return "", true
		}
	}
	return tok, false
}

// browser reports whether a refusal should be a page or a redirect rather
// than a bare 401: a navigation (GET/HEAD) that accepts HTML.
func (in *Input) browser() bool {
	return (in.Method == http.MethodGet || in.Method == http.MethodHead) && strings.Contains(in.Accept, "text/html")
}

// principal authenticates the input (nil, nil when it carries no token).
func (g *Guard) principal(ctx context.Context, in *Input) (*Principal, error) {
	if in.Malformed {
		return nil, &AuthError{Code: CodeInvalidRequest, Reason: ErrMalformedRequest}
	}
	if in.Token == "" {
		return nil, nil
	}
	return g.auth.Authenticate(ctx, in.Token)
}

// Check applies the path rules to in: the first rule set holding the path,
// its first matching rule. It never writes; see Write.
func (g *Guard) Check(ctx context.Context, in *Input) Outcome {
	p := cleanPath(in.Path)
	var rs *ruleSet
	for i := range g.sets {
		if g.sets[i].holds(p) {
			rs = &g.sets[i]
			break
		}
	}
	var rule *pathRule
	mode := unmatchedAuthenticated // no rule sets: authenticate only
	if rs != nil {
		rule = rs.find(in.Method, p)
		mode = rs.unmatched
	}
	pr, err := g.principal(ctx, in)
	if rule != nil && rule.public || rule == nil && mode == unmatchedAllow {
		// Public: an invalid token is ignored, a valid one still identifies.
		if err != nil {
			pr = nil
		}
		return Outcome{Status: http.StatusOK, Principal: pr, Rule: ruleName(rs, rule)}
	}
	if err == nil && pr == nil {
		err = &AuthError{Reason: ErrNoToken}
	}
	if err != nil {
		return g.refuse(in, p, rs, rule, err)
	}
	if rule == nil && mode == unmatchedDeny {
		return g.refuse(in, p, rs, rule, &ForbiddenError{Reason: ErrNotAllowed, Voter: "unmatched", Detail: "no rule matches the path"})
	}
	if rule != nil {
		if err := rule.check(pr); err != nil {
			out := g.refuse(in, p, rs, rule, err)
			out.Principal = pr
			return out
		}
	}
	return Outcome{Status: http.StatusOK, Principal: pr, Rule: ruleName(rs, rule)}
}

func ruleName(rs *ruleSet, r *pathRule) string {
	switch {
	case rs == nil:
		return ""
	case r == nil:
		return rs.name + "/unmatched"
	default:
		return rs.name + "/" + r.pat.raw
	}
}

// refuse builds the outcome of a refusal: 503, 401 (or a login redirect or
// page for a browser), 403 (with the forbidden page for a browser).
func (g *Guard) refuse(in *Input, p string, rs *ruleSet, rule *pathRule, err error) Outcome {
	out := Outcome{Err: err, Rule: ruleName(rs, rule)}
	var fe *ForbiddenError
	switch {
	case errors.Is(err, runtime.ErrUnavailable):
		out.Status = http.StatusServiceUnavailable
		return out
	case errors.As(err, &fe):
		out.Status = http.StatusForbidden
		if errors.Is(err, ErrInsufficientScope) {
			out.Challenge = challenge(g.realm, err)
		}
		if rs != nil && rs.forbiddenPage != nil && in.browser() {
			out.Page, out.PageStatus = rs.forbiddenPage, http.StatusForbidden
		}
		return out
	case !errors.Is(err, runtime.ErrUnauthenticated):
		out.Status = http.StatusInternalServerError
		return out
	}
	out.Status = http.StatusUnauthorized
	out.Challenge = challenge(g.realm, err)
	if rs == nil || !in.browser() {
		return out
	}
	switch {
	case rs.loginPage != nil && p == rs.prefix:
		out.Page, out.PageStatus = rs.loginPage, http.StatusOK
	case rs.loginPage != nil:
		out.Status, out.Location = http.StatusFound, rs.prefix
	case rs.loginURL != "" && p != rs.loginPath:
		// p == loginPath would redirect the login page to itself: a loop.
		out.Status, out.Location = http.StatusFound, rs.loginURL
	}
	if out.Location != "" {
		out.ReturnCookie = returnCookie(rs.returnCookie, p, in.Query, in.TLS)
	}
	return out
}

// returnCookie carries where the browser was going: a path and query on
// this site only, so following it can never leave the site (no open
// redirect), HttpOnly, SameSite=Lax, Secure under TLS.
func returnCookie(name, p, query string, tls bool) *http.Cookie {
	v := SafeReturnPath(p, query)
	return &http.Cookie{Name: name, Value: url.QueryEscape(v), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: tls, MaxAge: int((10 * time.Minute).Seconds())}
}

// SafeReturnPath turns a path and raw query into a same-site return path:
// always starting with a single "/", never "//" or "/\" (which browsers read
// as another host), without control characters. Use it too when reading the
// cookie back before redirecting to it.
func SafeReturnPath(p, query string) string {
	p = cleanPath(p)
	if strings.HasPrefix(p, "//") || strings.HasPrefix(p, `/\`) || strings.ContainsAny(p, "\\\x00\r\n\t") {
		return "/"
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return "/"
		}
	}
	u := url.URL{Path: p}
	s := u.EscapedPath()
	if query != "" && !strings.ContainsAny(query, "\x00\r\n#") {
		s += "?" + query
	}
	return s
}

// Write writes a refusal outcome (Status other than 200). It is the one
// place guard turns outcomes into HTTP responses.
func (g *Guard) Write(w http.ResponseWriter, out Outcome) {
	h := w.Header()
	if out.Challenge != "" {
		h.Set("WWW-Authenticate", out.Challenge)
	}
	h.Set("Cache-Control", "no-store")
	if out.ReturnCookie != nil {
		http.SetCookie(w, out.ReturnCookie)
	}
	if out.Location != "" {
		h.Set("Location", out.Location)
		w.WriteHeader(out.Status)
		return
	}
	if out.Page != nil {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(out.PageStatus)
		_, _ = w.Write(out.Page)
		return
	}
	writeErrorBody(w, out.Status, out.Err)
}

// WriteError writes err as RequireAuth's callers need: 401 with
// WWW-Authenticate for *AuthError, 403 for *ForbiddenError, 503 when a
// dependency was unavailable, 500 otherwise.
func WriteError(w http.ResponseWriter, realm string, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, runtime.ErrUnauthenticated):
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", challenge(realm, err))
	case errors.Is(err, runtime.ErrForbidden):
		status = http.StatusForbidden
		if errors.Is(err, ErrInsufficientScope) {
			w.Header().Set("WWW-Authenticate", challenge(realm, err))
		}
	case errors.Is(err, runtime.ErrUnavailable):
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeErrorBody(w, status, err)
}

// writeErrorBody writes a small JSON body. Details of a refused token stay
// in the WWW-Authenticate description; the body names only the class.
func writeErrorBody(w http.ResponseWriter, status int, err error) {
	code := "server_error"
	switch status {
	case http.StatusUnauthorized:
		code = "unauthorized"
	case http.StatusForbidden:
		code = "forbidden"
		if errors.Is(err, ErrInsufficientScope) {
			code = CodeInsufficientScope
		}
	case http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":"` + code + `"}`))
}

// Middleware applies the path rules to every request; an allowed request
// reaches next with the principal in its context.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := g.InputFrom(r)
		out := g.Check(r.Context(), &in)
		if out.Status != http.StatusOK {
			g.log.DebugContext(r.Context(), "guard: refused", "path", r.URL.Path, "status", out.Status, "rule", out.Rule, "err", out.Err)
			g.Write(w, out)
			return
		}
		if out.Principal != nil {
			r = r.WithContext(WithPrincipal(r.Context(), out.Principal))
		}
		next.ServeHTTP(w, r)
	})
}

// Protect authorizes every request to h with route's metadata and the
// guard's authorizers, settled by the decision matrix. It reuses the
// principal Middleware put into the context, or authenticates itself.
func (g *Guard) Protect(route Route, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, ok := PrincipalFrom(ctx)
		if !ok {
			in := g.InputFrom(r)
			var err error
			p, err = g.principal(ctx, &in)
			switch {
			case route.Skip:
				if err != nil {
					p = nil
				}
			case err != nil:
				WriteError(w, g.realm, err)
				return
			case p == nil:
				WriteError(w, g.realm, &AuthError{Reason: ErrNoToken})
				return
			}
			if p != nil {
				ctx = WithPrincipal(ctx, p)
				r = r.WithContext(ctx)
			}
		}
		if !route.Skip {
			in := AuthzRequest{Principal: p, Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery,
				RemoteIP: remoteIP(r.RemoteAddr), Resource: route.Resource, Route: &route, HTTP: r}
			if _, err := g.Authorize(ctx, &in); err != nil {
				WriteError(w, g.realm, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// Authorize settles req (its Route may be nil: authorizers only) with the
// guard's matrix. The error is a *ForbiddenError when refused.
func (g *Guard) Authorize(ctx context.Context, req *AuthzRequest) (Decision, error) {
	if req.Principal == nil {
		return Decision{}, &AuthError{Reason: ErrNoToken}
	}
	return authorize(ctx, g.matrix, g.global, req, g.log)
}
