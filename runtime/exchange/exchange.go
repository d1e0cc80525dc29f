package exchange

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/runtime/replay"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// Minter mints claimsmith's tokens (token.Minter).
type Minter interface {
	MintIDToken(ctx context.Context, r token.IDTokenRequest) (token.Minted, error)
	MintAccessToken(ctx context.Context, r token.AccessTokenRequest) (token.Minted, error)
}

// Deps are what an Exchanger needs besides its configuration.
type Deps struct {
	Minter Minter
	// Issuer is claimsmith's issuer: private_key_jwt assertions must name
	// it (or its token endpoint) in aud.
	Issuer string
	// HTTPClient fetches discovery and JWKS documents (default: 10s timeout).
	HTTPClient *http.Client
	// Keys replaces the remote key source of an issuer (tests, static
	// keys); nil entries and missing issuers use discovery.
	Keys   map[string]guard.KeySource
	Now    func() time.Time
	Logger *slog.Logger
	// ClientsOptions tune client-secret verification (token.ClientsOptions).
	ClientsOptions token.ClientsOptions
	// Store, when set, finds the clients registered in the store
	// (StoreClients); the configured clients are looked up first.
	Store ClientLookup
	// Replay, when set, remembers private_key_jwt assertion ids for every
	// node (the store's Redis): an assertion used on one node is refused on
	// the others. Nil keeps them in this process (one node).
	Replay replay.Store
}

// Exchanger serves the token endpoint's grants. It lives as long as the
// server (key caches, client back-offs and subject rates survive pipeline
// reloads); the pipeline of the serving generation is passed per call.
type Exchanger struct {
	cfg     Config
	deps    Deps
	issuers map[string]*issuer
	config  configClients
	store   ClientLookup
	secrets *token.Clients
	rate    *limiter
	seen    jtiCache
}

type issuer struct {
	cfg      IssuerConfig
	verifier *guard.JWTVerifier
}

// New checks cfg and builds the verifiers; nothing is fetched yet.
func New(cfg Config, deps Deps) (*Exchanger, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Minter == nil {
		return nil, fmt.Errorf("%w: exchange: no minter", runtime.ErrInvalid)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Exchanger{cfg: cfg, deps: deps, issuers: map[string]*issuer{}, config: configClients{}, store: deps.Store,
		rate: newLimiter(cfg.SubjectRate, deps.Now)}
	for _, ic := range cfg.Issuers {
		keys := deps.Keys[ic.Issuer]
		if keys == nil {
			rk, err := guard.NewRemoteKeys(guard.RemoteKeysConfig{Issuer: ic.Issuer, JWKSURL: ic.JWKSURL,
				Client: deps.HTTPClient, Now: deps.Now, Logger: deps.Logger})
			if err != nil {
				return nil, err
			}
			keys = rk
		}
		// Lenient: ID tokens carry typ JWT (or none) and no client_id;
		// signature, iss, aud, sub, exp, nbf and iat are still checked.
		v, err := guard.NewJWTVerifier(guard.VerifierConfig{Issuer: ic.Issuer, Audiences: ic.Audiences,
			Algorithms: ic.Algorithms, Leeway: ic.Leeway, Lenient: true}, keys, deps.Now)
		if err != nil {
			return nil, err
		}
		e.issuers[ic.Issuer] = &issuer{cfg: ic, verifier: v}
	}
	var ccs []token.ClientConfig
	for i := range cfg.Clients {
		cl := &Client{ClientConfig: cfg.Clients[i]}
		e.config[cl.ClientID] = cl
		if cl.SecretHash != "" {
			ccs = append(ccs, token.ClientConfig{ClientID: cl.ClientID, SecretHash: cl.SecretHash})
		}
		if cl.JWKS != "" {
			cl.keys, _ = parseClientJWKS(cl.JWKS) // checked by Validate
		}
	}
	sec, err := token.NewClientsWith(ccs, deps.ClientsOptions)
	if err != nil {
		var ve *runtime.ValidationError
		if errors.As(err, &ve) {
			return nil, bad("clients."+ve.ID+"."+ve.Field, "%s", ve.Reason)
		}
		return nil, err
	}
	e.secrets = sec
	return e, nil
}

// GrantTypes are the grant types some client may use, for discovery: both
// when clients may be registered in the store.
func (e *Exchanger) GrantTypes() []string {
	if e.store != nil {
		return []string{GrantTokenExchange, GrantClientCredentials}
	}
	var out []string
	for _, g := range []string{GrantTokenExchange, GrantClientCredentials} {
		for _, c := range e.cfg.Clients {
			if slices.Contains(c.GrantTypes, g) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// Credentials are the client's authentication as the transport found it.
type Credentials struct {
	ClientID, Secret string
	// Assertion and AssertionType are private_key_jwt (RFC 7523 §2.2).
	Assertion, AssertionType string
	// Basic is true for client_secret_basic (it decides the challenge).
	Basic bool
}

// Response is the successful answer (RFC 6749 §5.1, RFC 8693 §2.2.1).
type Response struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	IDToken         string `json:"id_token,omitempty"`
}

// Meta is the part of the HTTP request the login event reports.
type Meta struct {
	IP, UserAgent, Hostname string
}

// Token serves one request: client authentication, the grant's checks, the
// pipeline (enr, the serving generation's) and the minting. Refusals are
// *Error; anything else is a server failure.
func (e *Exchanger) Token(ctx context.Context, enr runtime.Enricher, cred Credentials, req Request, meta Meta) (Response, error) {
	cl, err := e.authenticate(ctx, cred)
	if err != nil {
		return Response{}, err
	}
	switch req.GrantType {
	case GrantTokenExchange, GrantClientCredentials:
	default:
		return Response{}, refuse(CodeUnsupportedGrantType, "grant_type %q is not supported", req.GrantType)
	}
	if !slices.Contains(cl.GrantTypes, req.GrantType) {
		return Response{}, refuse(CodeUnauthorizedClient, "client %q may not use grant_type %s", cl.ClientID, req.GrantType)
	}
	aud, err := target(&cl.ClientConfig, req)
	if err != nil {
		return Response{}, err
	}
	if len(cl.Scopes) > 0 {
		for _, s := range req.Scope {
			if !slices.Contains(cl.Scopes, s) {
				return Response{}, refuse(CodeInvalidScope, "scope %q is not allowed for client %q", s, cl.ClientID)
			}
		}
	}
	if req.GrantType == GrantClientCredentials {
		return e.clientCredentials(ctx, enr, &cl.ClientConfig, aud, req, meta)
	}
	return e.exchange(ctx, enr, &cl.ClientConfig, aud, req, meta)
}

// method is the authentication method cred uses.
func (cred Credentials) method() string {
	switch {
	case cred.Assertion != "" || cred.AssertionType != "":
		return AuthPrivateKeyJWT
	case cred.Basic:
		return AuthSecretBasic
	}
	return AuthSecretPost
}

func (e *Exchanger) authenticate(ctx context.Context, cred Credentials) (*Client, error) {
	cl, err := e.authenticateWith(ctx, cred)
	if err != nil {
		return nil, err
	}
	if cl.AuthMethod != "" && cl.AuthMethod != cred.method() {
		return nil, &Error{Code: CodeInvalidClient, Description: fmt.Sprintf("client %q authenticates with %s, not %s", cl.ClientID, cl.AuthMethod, cred.method())}
	}
	return cl, nil
}

func (e *Exchanger) authenticateWith(ctx context.Context, cred Credentials) (*Client, error) {
	if cred.Assertion != "" || cred.AssertionType != "" {
		return e.assertion(ctx, cred)
	}
	failed := &Error{Code: CodeInvalidClient, Description: "client authentication failed"}
	if cred.ClientID == "" {
		return nil, &Error{Code: CodeInvalidClient, Description: "client authentication is required"}
	}
	cl, err := e.lookup(ctx, cred.ClientID)
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return nil, err // the store cannot answer: a server condition
	}
	switch {
	case cl == nil || !cl.Stored:
		// A configured client, or none: the configured verifier, which
		// costs the same for an unknown id as for a wrong secret.
		if cl != nil && cl.SecretHash == "" {
			// A key-only client never authenticates with a secret; the
			// secret check still runs, so the answer costs the same.
			_, _ = e.secrets.Authenticate(ctx, cred.ClientID, cred.Secret)
			return nil, failed
		}
	case cl.secrets == nil:
		_, _ = e.secrets.Authenticate(ctx, cred.ClientID, cred.Secret)
		return nil, failed
	default:
		if _, err := cl.secrets.Authenticate(ctx, cred.ClientID, cred.Secret); err == nil {
			return cl, nil
		} else if !errors.Is(err, runtime.ErrUnauthenticated) {
			return nil, err
		}
		// A stored client's generated secret is checked with one hash;
		// the failure also pays what an unknown id pays, so a wrong
		// secret does not tell that the id is registered.
		_, _ = e.secrets.Authenticate(ctx, cred.ClientID, cred.Secret)
		return nil, failed
	}
	if _, err := e.secrets.Authenticate(ctx, cred.ClientID, cred.Secret); err != nil {
		if errors.Is(err, runtime.ErrUnauthenticated) {
			return nil, failed
		}
		return nil, err // busy or cancelled: a server condition, not the client's fault
	}
	return cl, nil
}

// target picks the one audience of the minted token from audience and
// resource (RFC 8693 §2.1; claimsmith mints single-audience tokens).
func target(cl *ClientConfig, req Request) (string, error) {
	asked := append(slices.Clone(req.Audience), req.Resource...)
	asked = nonEmpty(asked)
	switch {
	case len(asked) > 1:
		return "", refuse(CodeInvalidTarget, "one audience or resource per request, got %d", len(asked))
	case len(asked) == 0 && len(cl.Audiences) > 0:
		return cl.Audiences[0], nil
	case len(asked) == 0:
		return cl.ClientID, nil
	}
	if asked[0] == cl.ClientID || slices.Contains(cl.Audiences, asked[0]) {
		return asked[0], nil
	}
	return "", refuse(CodeInvalidTarget, "audience %q is not allowed for client %q", asked[0], cl.ClientID)
}

var subjectTypes = []string{TokenTypeIDToken, TokenTypeJWT, TokenTypeAccessToken}

// upstream is a verified upstream token.
type upstream struct {
	iss    *issuer
	claims map[string]any
}

func (e *Exchanger) exchange(ctx context.Context, enr runtime.Enricher, cl *ClientConfig, aud string, req Request, meta Meta) (Response, error) {
	switch {
	case req.SubjectToken == "":
		return Response{}, refuse(CodeInvalidRequest, "parameter subject_token is required")
	case req.SubjectTokenType == "":
		return Response{}, refuse(CodeInvalidRequest, "parameter subject_token_type is required")
	case !slices.Contains(subjectTypes, req.SubjectTokenType):
		return Response{}, refuse(CodeInvalidRequest, "subject_token_type %q is not supported (id_token, jwt or access_token URNs)", req.SubjectTokenType)
	case req.ActorToken == "" && req.ActorTokenType != "":
		return Response{}, refuse(CodeInvalidRequest, "actor_token_type without actor_token")
	case req.ActorToken != "" && !slices.Contains(subjectTypes, req.ActorTokenType):
		// RFC 8693 §2.1: actor_token_type is required with actor_token.
		return Response{}, refuse(CodeInvalidRequest, "actor_token_type %q is not supported", req.ActorTokenType)
	}
	issued := TokenTypeAccessToken
	switch req.RequestedTokenType {
	case "", TokenTypeAccessToken:
	case TokenTypeJWT:
		issued = TokenTypeJWT
	default:
		return Response{}, refuse(CodeInvalidRequest, "requested_token_type %q is not issued (access_token or jwt)", req.RequestedTokenType)
	}
	sub, err := e.verify(ctx, req.SubjectToken, req.SubjectTokenType, cl)
	if err != nil {
		return Response{}, err
	}
	var act map[string]any
	if req.ActorToken != "" {
		a, err := e.verify(ctx, req.ActorToken, req.ActorTokenType, cl)
		if err != nil {
			var oe *Error
			if errors.As(err, &oe) {
				oe.Description = "actor_token: " + oe.Description
			}
			return Response{}, err
		}
		act = map[string]any{"iss": a.iss.cfg.Issuer, "sub": claimString(a.claims, "sub")}
		if prior, ok := a.claims["act"].(map[string]any); ok {
			act["act"] = prior // a delegation chain (RFC 8693 §4.1)
		}
	}
	ev := sub.event(cl, aud, req, meta)
	if !e.rate.allow(sub.iss.cfg.Issuer + "\x00" + ev.User.UserID) {
		return Response{}, refuse(CodeSlowDown, "too many exchanges for this subject; retry later")
	}
	res, err := enr.Run(ctx, ev)
	if err != nil {
		return Response{}, fmt.Errorf("pipeline: %w", err)
	}
	if err := denied(res); err != nil {
		return Response{}, err
	}
	scopes := token.Scopes(req.Scope, res.ScopesAdded, res.ScopesRemoved)
	atr := token.AccessTokenRequest{Subject: ev.User.UserID, ClientID: cl.ClientID, Audience: aud,
		Scopes: scopes, Claims: res.AccessTokenClaims, Act: act}
	if res.Authorization != nil {
		atr.Login = runtime.LoginQuery(ev).Context()
	}
	at, err := e.deps.Minter.MintAccessToken(ctx, atr)
	if err != nil {
		return Response{}, err
	}
	out := e.response(at, issued, scopes)
	if slices.Contains(scopes, "openid") {
		idr := token.IDTokenRequest{Subject: ev.User.UserID, ClientID: cl.ClientID, Claims: res.IDTokenClaims}
		if t, ok := numeric(sub.claims["auth_time"]); ok {
			idr.AuthTime = time.Unix(t, 0)
		}
		id, err := e.deps.Minter.MintIDToken(ctx, idr)
		if err != nil {
			return Response{}, err
		}
		out.IDToken = id.Token
	}
	return out, nil
}

func (e *Exchanger) clientCredentials(ctx context.Context, enr runtime.Enricher, cl *ClientConfig, aud string, req Request, meta Meta) (Response, error) {
	ev := &runtime.Event{Trigger: runtime.TriggerCredentialsExchange,
		Client:      runtime.Client{ClientID: cl.ClientID},
		Request:     runtime.Request{IP: meta.IP, UserAgent: meta.UserAgent, Hostname: meta.Hostname, Method: http.MethodPost},
		Transaction: runtime.Transaction{RequestedScopes: req.Scope, Audience: aud, Protocol: "oauth2-client-credentials", GrantType: GrantClientCredentials}}
	res, err := enr.Run(ctx, ev)
	if err != nil {
		return Response{}, fmt.Errorf("pipeline: %w", err)
	}
	if err := denied(res); err != nil {
		return Response{}, err
	}
	scopes := token.Scopes(req.Scope, res.ScopesAdded, res.ScopesRemoved)
	// RFC 9068 §2.2: a client acting for itself is the token's subject.
	at, err := e.deps.Minter.MintAccessToken(ctx, token.AccessTokenRequest{Subject: cl.ClientID, ClientID: cl.ClientID,
		Audience: aud, Scopes: scopes, Claims: res.AccessTokenClaims})
	if err != nil {
		return Response{}, err
	}
	return e.response(at, "", scopes), nil
}

func denied(res *runtime.Result) error {
	if res.Decision.Allowed {
		return nil
	}
	code := CodeAccessDenied
	if res.Decision.Code == "unauthorized" {
		code = "unauthorized"
	}
	return &Error{Code: code, Description: res.Decision.Reason}
}

func (e *Exchanger) response(at token.Minted, issued string, scopes []string) Response {
	return Response{AccessToken: at.Token, IssuedTokenType: issued, TokenType: "Bearer",
		ExpiresIn: int64(at.ExpiresAt.Sub(at.IssuedAt) / time.Second), Scope: strings.Join(scopes, " ")}
}

// verify finds the token's issuer among the trusted ones and verifies it
// there. Every failure of the token itself is invalid_grant; a key source
// that cannot be reached is a server condition (runtime.ErrUnavailable).
func (e *Exchanger) verify(ctx context.Context, tok, typ string, cl *ClientConfig) (*upstream, error) {
	iss, err := PeekIssuer(tok)
	if err != nil {
		return nil, &Error{Code: CodeInvalidGrant, Description: "token is not a JWT", Err: err}
	}
	is := e.issuers[iss]
	if is == nil {
		return nil, refuse(CodeInvalidGrant, "issuer %q is not trusted", iss)
	}
	if len(cl.Issuers) > 0 && !slices.Contains(cl.Issuers, iss) {
		return nil, refuse(CodeInvalidGrant, "client %q may not exchange tokens of issuer %q", cl.ClientID, iss)
	}
	claims, err := is.verifier.Verify(ctx, tok)
	if err != nil {
		if errors.Is(err, runtime.ErrUnauthenticated) {
			return nil, &Error{Code: CodeInvalidGrant, Description: "token does not verify", Err: err}
		}
		return nil, fmt.Errorf("%w: verifying with issuer %q: %w", runtime.ErrUnavailable, iss, err)
	}
	if typ == TokenTypeIDToken {
		// An access token (RFC 9068 typ at+jwt) is not an ID token.
		if h, err := peekHeader(tok); err == nil && strings.EqualFold(strings.TrimPrefix(strings.ToLower(h.Typ), "application/"), "at+jwt") {
			return nil, refuse(CodeInvalidGrant, "subject_token_type is id_token but the token is an access token (typ at+jwt)")
		}
	}
	return &upstream{iss: is, claims: claims}, nil
}

// MaxPeekBytes bounds the tokens PeekIssuer decodes (guard.MaxTokenBytes).
const MaxPeekBytes = guard.MaxTokenBytes

// PeekIssuer reads a compact JWS's iss without verifying it: only to pick
// the trusted issuer whose keys then verify the whole token.
func PeekIssuer(tok string) (string, error) {
	if len(tok) > MaxPeekBytes {
		return "", fmt.Errorf("%w: token of %d bytes", runtime.ErrTooLarge, len(tok))
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: not a compact JWS", runtime.ErrInvalid)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("%w: payload is not base64url", runtime.ErrInvalid)
	}
	var c struct {
		Iss json.RawMessage `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", fmt.Errorf("%w: payload is not a JSON object", runtime.ErrInvalid)
	}
	var iss string
	if err := json.Unmarshal(c.Iss, &iss); err != nil || iss == "" {
		return "", fmt.Errorf("%w: iss is missing or not a string", runtime.ErrInvalid)
	}
	return iss, nil
}

type header struct {
	Typ string `json:"typ"`
}

func peekHeader(tok string) (header, error) {
	var h header
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return h, runtime.ErrInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(tok[:i])
	if err != nil {
		return h, err
	}
	err = json.Unmarshal(b, &h)
	return h, err
}

// event builds the login event from the verified claims.
func (u *upstream) event(cl *ClientConfig, aud string, req Request, meta Meta) *runtime.Event {
	m := u.iss.cfg.UserClaims
	user := runtime.User{
		UserID:      claimString(u.claims, m["user_id"]),
		Email:       claimString(u.claims, m["email"]),
		Name:        claimString(u.claims, m["name"]),
		Nickname:    claimString(u.claims, m["nickname"]),
		Username:    claimString(u.claims, m["username"]),
		Picture:     claimString(u.claims, m["picture"]),
		PhoneNumber: claimString(u.claims, m["phone_number"]),
		Groups:      claimStrings(lookup(u.claims, u.iss.cfg.GroupsClaim)),
	}
	if user.UserID == "" {
		user.UserID = claimString(u.claims, "sub")
	}
	user.EmailVerified, _ = lookup(u.claims, m["email_verified"]).(bool)
	user.Identities = []runtime.Identity{{Connection: u.iss.cfg.Connection, Provider: "oidc", UserID: claimString(u.claims, "sub")}}
	return &runtime.Event{
		Trigger:    runtime.TriggerPostLogin,
		User:       user,
		Client:     runtime.Client{ClientID: cl.ClientID},
		Connection: runtime.Connection{Name: u.iss.cfg.Connection, Strategy: "oidc"},
		Request:    runtime.Request{IP: meta.IP, UserAgent: meta.UserAgent, Hostname: meta.Hostname, Method: http.MethodPost},
		Transaction: runtime.Transaction{RequestedScopes: req.Scope, Audience: aud,
			Protocol: "oauth2-token-exchange", GrantType: GrantTokenExchange},
	}
}

// lookup follows a dotted path through objects (realm_access.roles).
func lookup(c map[string]any, path string) any {
	if path == "" {
		return nil
	}
	if v, ok := c[path]; ok {
		return v
	}
	var cur any = c
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func claimString(c map[string]any, path string) string {
	s, _ := lookup(c, path).(string)
	return s
}

// claimStrings reads a list of strings, or one string (Entra ID and some
// IdPs send a single group as a string).
func claimStrings(v any) []string {
	switch x := v.(type) {
	case string:
		if x != "" {
			return []string{x}
		}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func numeric(v any) (int64, bool) {
	if n, ok := v.(json.Number); ok {
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// limiter is a token bucket per key, bounded in memory: idle buckets are
// full and are forgotten first.
type limiter struct {
	cfg RateConfig
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

const maxBuckets = 100_000

func newLimiter(cfg RateConfig, now func() time.Time) *limiter {
	return &limiter{cfg: cfg, now: now, m: map[string]*bucket{}}
}

func (l *limiter) allow(key string) bool {
	now := l.now()
	rate := float64(l.cfg.PerMinute) / 60
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= maxBuckets {
			for k, o := range l.m {
				if o.tokens+now.Sub(o.at).Seconds()*rate >= float64(l.cfg.Burst) {
					delete(l.m, k)
				}
			}
		}
		b = &bucket{tokens: float64(l.cfg.Burst), at: now}
		l.m[key] = b
	}
	b.tokens = min(float64(l.cfg.Burst), b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
