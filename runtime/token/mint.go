package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// Lifetimes are how long minted tokens are valid.
type Lifetimes struct {
	IDToken     time.Duration `yaml:"id_token"`
	AccessToken time.Duration `yaml:"access_token"`
}

// MinterConfig configures minting.
type MinterConfig struct {
	// Issuer is the iss of every token: an https URL (http allowed for
	// loopback development) without query or fragment (OIDC Discovery §3).
	Issuer string
	// Default lifetimes (ID token 1h, access token 1h when zero).
	Default Lifetimes
	// Clients overrides lifetimes per client_id; zero fields use Default.
	Clients map[string]Lifetimes
}

// ValidateIssuer checks an issuer identifier.
func ValidateIssuer(iss string) error {
	u, err := url.Parse(iss)
	if err != nil || iss == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && u.Scheme != "http") {
		return &runtime.ValidationError{Entity: "tokens", Field: "issuer", Reason: fmt.Sprintf("%q must be an http(s) URL with a host and no query or fragment", iss)}
	}
	return nil
}

func (c *MinterConfig) defaults() error {
	if err := ValidateIssuer(c.Issuer); err != nil {
		return err
	}
	if c.Default.IDToken == 0 {
		c.Default.IDToken = time.Hour
	}
	if c.Default.AccessToken == 0 {
		c.Default.AccessToken = time.Hour
	}
	check := func(who string, l Lifetimes) error {
		if l.IDToken < 0 || l.AccessToken < 0 {
			return &runtime.ValidationError{Entity: "tokens", ID: who, Field: "lifetimes", Reason: "must not be negative"}
		}
		return nil
	}
	if err := check("default", c.Default); err != nil {
		return err
	}
	for id, l := range c.Clients {
		if err := check(id, l); err != nil {
			return err
		}
	}
	return nil
}

// lifetimes returns the effective lifetimes for a client.
func (c *MinterConfig) lifetimes(clientID string) Lifetimes {
	l := c.Default
	if o, ok := c.Clients[clientID]; ok {
		if o.IDToken > 0 {
			l.IDToken = o.IDToken
		}
		if o.AccessToken > 0 {
			l.AccessToken = o.AccessToken
		}
	}
	return l
}

// MaxLifetime is the longest lifetime any token can get: the key set must
// keep a retired key at least this long (plus leeway).
func (c MinterConfig) MaxLifetime() time.Duration {
	_ = c.defaults()
	m := max(c.Default.IDToken, c.Default.AccessToken)
	for _, l := range c.Clients {
		m = max(m, l.IDToken, l.AccessToken)
	}
	return m
}

// Minter mints ID tokens and RFC 9068 access tokens with the key set's active key.
type Minter struct {
	keys *KeySet
	cfg  MinterConfig
	now  func() time.Time
	// bufs recycles payload buffers: the signer keeps the payload only
	// until the token is serialized, and a fresh 2-8 KB buffer grown by
	// appends costs as much as the encoding itself.
	bufs sync.Pool
}

func (m *Minter) getBuf() *[]byte {
	if b, ok := m.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

func (m *Minter) putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 { // do not pin one huge claim set forever
		m.bufs.Put(b)
	}
}

// NewMinter checks the configuration: no lifetime may outlast the key set's
// retention, or a token could outlive the key that verifies it.
func NewMinter(keys *KeySet, cfg MinterConfig, now func() time.Time) (*Minter, error) {
	if keys == nil || now == nil {
		return nil, errors.New("token: NewMinter needs a key set and a clock")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if ml := cfg.MaxLifetime(); ml > keys.Config().Retention {
		return nil, &runtime.ValidationError{Entity: "tokens", Field: "lifetimes",
			Reason: fmt.Sprintf("longest token lifetime %s exceeds the key retention %s", ml, keys.Config().Retention)}
	}
	return &Minter{keys: keys, cfg: cfg, now: now}, nil
}

// Issuer is the configured issuer.
func (m *Minter) Issuer() string { return m.cfg.Issuer }

// Minted is a signed token and what it says about itself.
type Minted struct {
	Token     string    `json:"token"`
	KeyID     string    `json:"kid"`
	JTI       string    `json:"jti,omitempty"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// IDTokenRequest is what goes into an ID token.
type IDTokenRequest struct {
	Subject  string
	ClientID string
	// AuthTime is when the user authenticated (zero: now).
	AuthTime time.Time
	Nonce    string
	Claims   runtime.Claims
}

// AccessTokenRequest is what goes into an access token.
type AccessTokenRequest struct {
	Subject  string
	ClientID string
	// Audience is the resource server (aud); empty uses the client_id.
	Audience string
	Scopes   []string
	Claims   runtime.Claims
	// Login, when not empty, is recorded in runtime.LoginContextClaim so
	// that live introspection resolves the policy the login resolved
	// (connection mappings, passed-through IdP groups).
	Login runtime.LoginContext
	// Act, when set, is the RFC 8693 §4.1 act claim of a delegated token
	// (the acting party; reserved, so no rule can set it).
	Act map[string]any
}

// MintIDToken signs an OIDC Core ID token: iss, sub, aud (client_id), exp,
// iat, auth_time, nonce when given, then the custom claims.
func (m *Minter) MintIDToken(ctx context.Context, r IDTokenRequest) (Minted, error) {
	if r.Subject == "" || r.ClientID == "" {
		return Minted{}, &runtime.ValidationError{Entity: "id token", Field: "sub/client_id", Reason: "subject and client_id are required"}
	}
	key, err := m.keys.Active()
	if err != nil {
		return Minted{}, err
	}
	now := m.now().Truncate(time.Second)
	exp := now.Add(m.cfg.lifetimes(r.ClientID).IDToken)
	buf := m.getBuf()
	defer m.putBuf(buf)
	b, err := m.idPayload((*buf)[:0], r, now, exp)
	*buf = b
	if err != nil {
		return Minted{}, err
	}
	tok, err := sign(key, TypeIDToken, b)
	if err != nil {
		return Minted{}, err
	}
	return Minted{Token: tok, KeyID: key.ID, IssuedAt: now, ExpiresAt: exp}, nil
}

// idPayload appends the ID token's claim set to b.
func (m *Minter) idPayload(b []byte, r IDTokenRequest, now, exp time.Time) ([]byte, error) {
	at := r.AuthTime
	if at.IsZero() {
		at = now
	}
	b = append(b, `{"iss":`...)
	b = appendString(b, m.cfg.Issuer)
	b = appendStringClaim(b, "sub", r.Subject)
	b = appendStringClaim(b, "aud", r.ClientID)
	b = appendTimeClaim(b, "exp", exp)
	b = appendTimeClaim(b, "iat", now)
	b = appendTimeClaim(b, "auth_time", at)
	if r.Nonce != "" {
		b = appendStringClaim(b, "nonce", r.Nonce)
	}
	b, err := appendCustom(b, r.Claims, "id token")
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// MintAccessToken signs an RFC 9068 access token (typ at+jwt): iss, sub, aud,
// client_id, exp, iat, nbf, jti, scope (space-separated, when any), then the
// custom claims.
func (m *Minter) MintAccessToken(ctx context.Context, r AccessTokenRequest) (Minted, error) {
	if r.Subject == "" || r.ClientID == "" {
		return Minted{}, &runtime.ValidationError{Entity: "access token", Field: "sub/client_id", Reason: "subject and client_id are required"}
	}
	key, err := m.keys.Active()
	if err != nil {
		return Minted{}, err
	}
	aud := r.Audience
	if aud == "" {
		aud = r.ClientID
	}
	jti, err := newJTI()
	if err != nil {
		return Minted{}, err
	}
	now := m.now().Truncate(time.Second)
	exp := now.Add(m.cfg.lifetimes(r.ClientID).AccessToken)
	buf := m.getBuf()
	defer m.putBuf(buf)
	b, err := m.accessPayload((*buf)[:0], r, aud, jti, now, exp)
	*buf = b
	if err != nil {
		return Minted{}, err
	}
	tok, err := sign(key, TypeAccessToken, b)
	if err != nil {
		return Minted{}, err
	}
	return Minted{Token: tok, KeyID: key.ID, JTI: jti, IssuedAt: now, ExpiresAt: exp}, nil
}

// accessPayload appends the access token's claim set to b.
func (m *Minter) accessPayload(b []byte, r AccessTokenRequest, aud, jti string, now, exp time.Time) ([]byte, error) {
	b = append(b, `{"iss":`...)
	b = appendString(b, m.cfg.Issuer)
	b = appendStringClaim(b, "sub", r.Subject)
	b = appendStringClaim(b, "aud", aud)
	b = appendStringClaim(b, "client_id", r.ClientID)
	b = appendTimeClaim(b, "exp", exp)
	b = appendTimeClaim(b, "iat", now)
	b = appendTimeClaim(b, "nbf", now)
	b = appendStringClaim(b, "jti", jti)
	if len(r.Scopes) > 0 {
		b = appendKey(b, "scope")
		b = append(b, '"')
		for i, s := range r.Scopes {
			if !runtime.ValidScope(s) {
				return nil, &runtime.ValidationError{Entity: "access token", Field: "scope", Reason: fmt.Sprintf("scope %q is not a valid scope token (RFC 6749 §3.3)", s)}
			}
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, s...)
		}
		b = append(b, '"')
	}
	if !r.Login.Empty() {
		b = appendKey(b, runtime.LoginContextClaim)
		b = append(b, `{"connection":`...)
		b = appendString(b, r.Login.Connection)
		b = appendKey(b, "idp_groups")
		var err error
		if b, err = appendValue(b, nonNil(r.Login.IdPGroups)); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	if r.Act != nil {
		b = appendKey(b, "act")
		var err error
		if b, err = appendValue(b, r.Act); err != nil {
			return nil, &runtime.ValidationError{Entity: "access token", Field: "act", Reason: err.Error()}
		}
	}
	b, err := appendCustom(b, r.Claims, "access token")
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func sign(key *Key, typ string, payload []byte) (string, error) {
	jws, err := key.Signer(typ).Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign with key %s: %w", key.ID, err)
	}
	return jws.CompactSerialize()
}

func newJTI() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Tokens are the tokens minted for one login.
type Tokens struct {
	// IDToken is nil for machine-to-machine logins (credentials-exchange).
	IDToken     *Minted `json:"id_token,omitempty"`
	AccessToken Minted  `json:"access_token"`
	Scope       string  `json:"scope,omitempty"`
}

// ErrDenied is returned when asked to mint for a login the pipeline denied.
var ErrDenied = fmt.Errorf("%w: login denied", runtime.ErrForbidden)

// MintLogin mints the tokens for a pipeline result: the ID token with the
// result's ID-token claims (not for credentials-exchange, which has no user)
// and the access token for the transaction's audience with the requested
// scopes plus ScopesAdded minus ScopesRemoved and the access-token claims.
// For credentials-exchange the access token's sub is the client_id (RFC 9068 §2.2).
func (m *Minter) MintLogin(ctx context.Context, ev *runtime.Event, res *runtime.Result) (Tokens, error) {
	if !res.Decision.Allowed {
		return Tokens{}, fmt.Errorf("%w by rule %q: %s", ErrDenied, res.Decision.Rule, res.Decision.Reason)
	}
	scopes := Scopes(ev.Transaction.RequestedScopes, res.ScopesAdded, res.ScopesRemoved)
	var out Tokens
	sub := ev.User.UserID
	if ev.Trigger == runtime.TriggerCredentialsExchange || sub == "" {
		sub = ev.Client.ClientID
	} else {
		id, err := m.MintIDToken(ctx, IDTokenRequest{Subject: sub, ClientID: ev.Client.ClientID, Nonce: ev.Transaction.Nonce, Claims: res.IDTokenClaims})
		if err != nil {
			return Tokens{}, err
		}
		out.IDToken = &id
	}
	atr := AccessTokenRequest{Subject: sub, ClientID: ev.Client.ClientID,
		Audience: ev.Transaction.Audience, Scopes: scopes, Claims: res.AccessTokenClaims}
	if res.Authorization != nil {
		// The authorization rule ran: live introspection must be able to
		// ask its question again, connection and IdP groups included.
		atr.Login = runtime.LoginQuery(ev).Context()
	}
	at, err := m.MintAccessToken(ctx, atr)
	if err != nil {
		return Tokens{}, err
	}
	out.AccessToken = at
	for i, s := range scopes {
		if i > 0 {
			out.Scope += " "
		}
		out.Scope += s
	}
	return out, nil
}

// Scopes returns requested + added − removed, de-duplicated, in first-seen order.
func Scopes(requested, added, removed []string) []string {
	out := make([]string, 0, len(requested)+len(added))
	for _, list := range [][]string{requested, added} {
		for _, s := range list {
			if s != "" && !slices.Contains(out, s) && !slices.Contains(removed, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
