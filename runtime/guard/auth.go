package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// Revocations says whether a token id was revoked (claimsmith's revocation
// list implements it).
type Revocations interface {
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// AuthConfig configures an Authenticator. Set Verifier, Introspector or both.
type AuthConfig struct {
	// Verifier checks JWTs locally. Without it every token is introspected.
	Verifier *JWTVerifier
	// Introspector asks an RFC 7662 endpoint: for every token when there is
	// no Verifier (or Introspect is set), and for tokens whose OverflowClaim
	// is true (their groups, roles or permissions did not fit).
	Introspector *Introspector
	// Introspect sends every token to the Introspector even with a Verifier.
	Introspect bool
	// Revocations, when set, is asked about a locally verified token's jti.
	Revocations Revocations
	// Paths say where groups, roles, permissions and scopes are.
	Paths ClaimPaths
	// OverflowClaim is "<namespace>authz_overflow".
	OverflowClaim string
	// CacheTTL bounds how long a verified principal is reused (default 30s;
	// -1 disables the cache). A revoked token is refused within this bound.
	// Entries never outlive the token's exp.
	CacheTTL time.Duration
	// CacheSize bounds the cache's entries (default 10000).
	CacheSize int
	Now       func() time.Time
	Logger    *slog.Logger
}

// Authenticator turns a bearer token into a Principal.
type Authenticator struct {
	cfg   AuthConfig
	paths compiledPaths
	cache *tokenCache
}

// NewAuthenticator checks cfg.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if cfg.Verifier == nil && cfg.Introspector == nil {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "issuer", Reason: "configure token verification (issuer/jwks) or introspection"}
	}
	if cfg.Introspect && cfg.Introspector == nil {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "introspection", Reason: "mode introspect needs an introspection endpoint"}
	}
	paths, err := cfg.Paths.compile()
	if err != nil {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "claim_paths", Reason: err.Error()}
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, paths: paths}
	if cfg.CacheTTL > 0 {
		a.cache = newTokenCache(cfg.CacheSize)
	}
	return a, nil
}

// CacheTTL is the bound on how long a revocation can go unseen.
func (a *Authenticator) CacheTTL() time.Duration { return max(a.cfg.CacheTTL, 0) }

// Authenticate verifies tok (answering from the cache when it can) and
// returns the principal, an *AuthError for a bad token, or an error matching
// runtime.ErrUnavailable when keys or introspection could not be reached.
func (a *Authenticator) Authenticate(ctx context.Context, tok string) (*Principal, error) {
	if tok == "" {
		return nil, &AuthError{Reason: ErrNoToken}
	}
	now := a.cfg.Now()
	var key [32]byte
	if a.cache != nil {
		key = tokenKey(tok)
		if e, ok := a.cache.get(key, now); ok {
			return e.p, e.err
		}
	}
	p, err := a.authenticate(ctx, tok)
	if a.cache != nil {
		switch {
		case err == nil:
			until := now.Add(a.cfg.CacheTTL)
			if !p.ExpiresAt.IsZero() && p.ExpiresAt.Before(until) {
				until = p.ExpiresAt
			}
			a.cache.put(key, cacheEntry{p: p, until: until}, now)
		case p == nil && errors.Is(err, ErrInvalidToken) && a.usesIntrospection(tok):
			// An inactive answer costs a round trip: remember it briefly.
			a.cache.put(key, cacheEntry{err: err, until: now.Add(min(a.cfg.CacheTTL, 10*time.Second))}, now)
		}
	}
	return p, err
}

func (a *Authenticator) usesIntrospection(string) bool {
	return a.cfg.Verifier == nil || a.cfg.Introspect
}

func (a *Authenticator) authenticate(ctx context.Context, tok string) (*Principal, error) {
	if a.usesIntrospection(tok) {
		claims, err := a.cfg.Introspector.Introspect(ctx, tok)
		if err != nil {
			return nil, err
		}
		return a.fromIntrospection(claims, "")
	}
	claims, err := a.cfg.Verifier.Verify(ctx, tok)
	if err != nil {
		return nil, err
	}
	if a.cfg.Revocations != nil {
		jti := str(claims["jti"])
		if jti != "" {
			revoked, err := a.cfg.Revocations.IsRevoked(ctx, jti)
			if err != nil {
				return nil, fmt.Errorf("%w: revocation list: %v", runtime.ErrUnavailable, err)
			}
			if revoked {
				return nil, invalidToken(ErrInvalidToken, "revoked")
			}
		}
	}
	if a.cfg.OverflowClaim != "" && claims[a.cfg.OverflowClaim] == true {
		if a.cfg.Introspector == nil {
			a.cfg.Logger.WarnContext(ctx, "guard: token carries authz_overflow but no introspection endpoint is configured; using the claims it carries", "sub", str(claims["sub"]))
		} else {
			full, err := a.cfg.Introspector.Introspect(ctx, tok)
			if err != nil {
				return nil, err
			}
			return a.fromIntrospection(full, str(claims["sub"]))
		}
	}
	return a.paths.newPrincipal(claims), nil
}

// fromIntrospection builds the principal of an active answer. sub, when
// set, is the verified token's subject: the answer must be about the same
// user (a mix-up would hand one user another's permissions).
func (a *Authenticator) fromIntrospection(claims map[string]any, sub string) (*Principal, error) {
	p := a.paths.newPrincipal(claims)
	p.Introspected = true
	if p.Subject == "" {
		return nil, invalidToken(ErrInvalidToken, "introspection answer without sub")
	}
	if sub != "" && p.Subject != sub {
		return nil, invalidToken(ErrInvalidToken, "introspection answered for sub %q, the token is for %q", p.Subject, sub)
	}
	if v := a.cfg.Verifier; v != nil {
		if !v.cfg.AnyAudience && claims["aud"] != nil && !audienceMatches(claims["aud"], v.cfg.Audiences) {
			return nil, invalidToken(ErrInvalidToken, "aud does not name this API")
		}
		if iss := str(claims["iss"]); iss != "" && iss != v.cfg.Issuer {
			return nil, invalidToken(ErrInvalidToken, "iss %q", iss)
		}
	}
	if !p.ExpiresAt.IsZero() && !a.cfg.Now().Before(p.ExpiresAt) {
		return nil, invalidToken(ErrInvalidToken, "expired")
	}
	return p, nil
}

// Principal builds a principal from an already verified claim set with the
// configured claim paths (for callers that verified the token themselves).
func (a *Authenticator) Principal(claims map[string]any) *Principal {
	return a.paths.newPrincipal(claims)
}
