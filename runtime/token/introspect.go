package token

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// IntrospectorConfig configures introspection.
type IntrospectorConfig struct {
	// Namespace prefixes the live groups/roles/permissions claims, e.g.
	// "https://example.com/", until a pipeline's login rules are known
	// (UseLoginRules): from then on the authorization rule's own claim
	// names apply.
	Namespace string
	// IgnoreRequiredRoles keeps a live answer active even when the user no
	// longer holds any of the client's required roles. By default such a
	// token is reported inactive.
	IgnoreRequiredRoles bool
}

// Introspector answers RFC 7662 introspection and RFC 7009 revocation for
// tokens claimsmith minted.
type Introspector struct {
	verify   *Verifier
	keys     *KeySet
	revoked  RevocationList
	policies authz.PolicyResolver    // nil: live answers unavailable
	apps     authz.ApplicationReader // nil: no required_roles check
	cfg      IntrospectorConfig
	now      func() time.Time
	log      *slog.Logger
	// rules are the serving pipeline's login rules (nil: the defaults of
	// cfg.Namespace); a pipeline reload swaps them.
	rules atomic.Pointer[runtime.LoginRules]
}

// UseLoginRules makes live answers replay the given pipeline's login rules
// (runtime.Pipeline.LoginRules): its authorization rule's claim names,
// lists and passthrough, and its required-roles gates with their metadata
// keys. Call it whenever the serving pipeline changes.
func (in *Introspector) UseLoginRules(lr runtime.LoginRules) {
	in.rules.Store(&lr)
}

func (in *Introspector) loginRules() runtime.LoginRules {
	if lr := in.rules.Load(); lr != nil {
		return *lr
	}
	return runtime.DefaultLoginRules(in.cfg.Namespace)
}

// NewIntrospector wires the parts. policies and apps may be nil when no
// authorization store is configured; live answers then fail with ErrInvalid.
func NewIntrospector(v *Verifier, keys *KeySet, revoked RevocationList, policies authz.PolicyResolver,
	apps authz.ApplicationReader, cfg IntrospectorConfig, now func() time.Time, log *slog.Logger) (*Introspector, error) {
	if v == nil || keys == nil || revoked == nil || now == nil || log == nil {
		return nil, errors.New("token: NewIntrospector needs a verifier, key set, revocation list, clock and logger")
	}
	if cfg.Namespace != "" && !strings.HasPrefix(cfg.Namespace, "https://") && !strings.HasPrefix(cfg.Namespace, "http://") {
		return nil, &runtime.ValidationError{Entity: "tokens", Field: "introspection.namespace", Reason: fmt.Sprintf("%q must be an http(s) URL prefix", cfg.Namespace)}
	}
	return &Introspector{verify: v, keys: keys, revoked: revoked, policies: policies, apps: apps, cfg: cfg, now: now, log: log}, nil
}

// IntrospectRequest is one introspection question.
type IntrospectRequest struct {
	Token string
	// TokenTypeHint is accepted and ignored: claimsmith only has access tokens.
	TokenTypeHint string
	// Live asks for the user's current groups/roles/permissions.
	Live bool
}

// Introspection is an answer: the RFC 7662 JSON object.
type Introspection struct {
	Active bool
	JSON   []byte
}

var inactiveJSON = []byte(`{"active":false}`)

// Inactive is the answer for every token that is not active, whatever the
// reason (RFC 7662 §2.2: nothing else may be revealed).
func Inactive() Introspection { return Introspection{JSON: inactiveJSON} }

// isRevoked asks the revocation list, with the token's issue time when
// the list takes it.
func (in *Introspector) isRevoked(ctx context.Context, c *Claims) (bool, error) {
	if il, ok := in.revoked.(IssuedRevocationList); ok {
		var issued time.Time
		if c.IssuedAt != 0 {
			issued = c.IssuedAt.Time()
		}
		return il.IsRevokedIssued(ctx, c.ID, issued)
	}
	return in.revoked.IsRevoked(ctx, c.ID)
}

// Introspect answers for caller. Every reason a token is not usable gives
// Inactive(); an error means the question could not be answered (for
// example the authorization store is down during a live answer).
func (in *Introspector) Introspect(ctx context.Context, caller Caller, r IntrospectRequest) (Introspection, error) {
	v, err := in.verify.Verify(ctx, r.Token, VerifyOptions{Kind: KindAccessToken})
	if err != nil {
		in.log.DebugContext(ctx, "introspection: inactive", "caller", caller.ClientID, "reason", err)
		return Inactive(), nil
	}
	if !caller.Entitled(v.Claims.Audience) {
		in.log.DebugContext(ctx, "introspection: inactive", "caller", caller.ClientID, "reason", "token audience not allowed for the caller", "aud", []string(v.Claims.Audience))
		return Inactive(), nil
	}
	revoked, err := in.isRevoked(ctx, &v.Claims)
	if err != nil {
		return Introspection{}, fmt.Errorf("introspection: revocation list: %w", err)
	}
	if revoked {
		in.log.DebugContext(ctx, "introspection: inactive", "caller", caller.ClientID, "reason", ErrRevoked, "jti", v.Claims.ID)
		return Inactive(), nil
	}
	if r.Live || caller.Live {
		return in.live(ctx, caller, v)
	}
	// The verified payload already holds iss, sub, aud, client_id, exp, iat,
	// nbf, jti, scope and the custom claims: splice the two fields the token
	// lacks in front instead of decoding and re-encoding it.
	p := bytes.TrimSpace(v.Payload)
	out := make([]byte, 0, len(p)+40)
	out = append(out, `{"active":true,"token_type":"Bearer"`...)
	if len(bytes.TrimSpace(p[1:len(p)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, p[1:]...)
	return Introspection{Active: true, JSON: out}, nil
}

// live answers with the claims the login would get now: the user's current
// policy, resolved with the login's own query (the connection and IdP
// groups the minter recorded in runtime.LoginContextClaim) and projected
// with the pipeline's login rules, replacing what the token carried; and
// turns the answer inactive when a required-roles gate no longer passes.
func (in *Introspector) live(ctx context.Context, caller Caller, v *Verified) (Introspection, error) {
	if in.policies == nil {
		return Introspection{}, fmt.Errorf("%w: live introspection needs an authorization store", runtime.ErrInvalid)
	}
	var claims runtime.Claims
	if err := claims.UnmarshalJSON(v.Payload); err != nil {
		return Introspection{}, fmt.Errorf("introspection: claims: %w", err)
	}
	lc, err := loginContext(claims)
	if err != nil {
		return Introspection{}, err
	}
	c := v.Claims
	pol, err := in.policies.ResolvePolicy(ctx, runtime.TokenQuery(c.Subject, c.ClientID, c.Audience, lc))
	if err != nil {
		return Introspection{}, fmt.Errorf("introspection: resolve policy of user %q for client %q: %w", c.Subject, c.ClientID, err)
	}
	lr := in.loginRules()
	proj := runtime.DefaultProjection(in.cfg.Namespace)
	if lr.Projection != nil {
		proj = *lr.Projection
	}
	// The IdP's own roles/permissions (event.authorization) are not
	// recorded: their passthrough cannot be replayed.
	a := proj.Authorization(pol.Groups, pol.Roles, pol.Permissions, lc.IdPGroups, nil)
	if !in.cfg.IgnoreRequiredRoles && in.apps != nil && len(lr.Gates) > 0 {
		app, err := in.apps.Application(ctx, c.ClientID)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
		case err != nil:
			return Introspection{}, fmt.Errorf("introspection: application %q: %w", c.ClientID, err)
		default:
			for _, g := range lr.Gates {
				if _, ok := g.Check(app.Metadata, a.Roles); !ok {
					in.log.DebugContext(ctx, "introspection: inactive", "caller", caller.ClientID, "reason", "required roles no longer held",
						"metadata_key", g.MetadataKey, "sub", c.Subject, "client_id", c.ClientID)
					return Inactive(), nil
				}
			}
		}
	}
	out := make(runtime.Claims, 0, len(claims)+5)
	out = append(out, runtime.Claim{Name: "active", Value: true}, runtime.Claim{Name: "token_type", Value: "Bearer"})
	out = append(out, claims...)
	proj.Set(&out, proj.AccessToken, a)
	b, err := out.MarshalJSON()
	if err != nil {
		return Introspection{}, err
	}
	return Introspection{Active: true, JSON: b}, nil
}

// loginContext reads what the minter recorded in runtime.LoginContextClaim
// (accessPayload writes it); a token without it (no authorization rule, or
// minted before it was recorded) resolves without connection and IdP
// groups.
func loginContext(claims runtime.Claims) (runtime.LoginContext, error) {
	var lc runtime.LoginContext
	raw, ok := claims.Get(runtime.LoginContextClaim)
	if !ok {
		return lc, nil
	}
	bad := fmt.Errorf("%w: introspection: %s claim is not {connection, idp_groups}", runtime.ErrInvalid, runtime.LoginContextClaim)
	m, ok := raw.(map[string]any)
	if !ok {
		return lc, bad
	}
	if lc.Connection, ok = m["connection"].(string); !ok && m["connection"] != nil {
		return lc, bad
	}
	groups, _ := m["idp_groups"].([]any)
	lc.IdPGroups = make([]string, 0, len(groups))
	for _, g := range groups {
		s, ok := g.(string)
		if !ok {
			return lc, bad
		}
		lc.IdPGroups = append(lc.IdPGroups, s)
	}
	return lc, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Signed returns the RFC 9701 form of an answer: a JWS (typ
// token-introspection+jwt) with iss, aud (the caller), iat and
// token_introspection holding the RFC 7662 object — no top-level sub or exp,
// so it can never pass for an access token.
func (in *Introspector) Signed(ctx context.Context, caller Caller, ans Introspection) (string, error) {
	key, err := in.keys.Active()
	if err != nil {
		return "", err
	}
	b := make([]byte, 0, len(ans.JSON)+128)
	b = append(b, `{"iss":`...)
	b = appendString(b, in.verify.issuer)
	b = appendStringClaim(b, "aud", caller.ClientID)
	b = appendTimeClaim(b, "iat", in.now())
	b = appendKey(b, "token_introspection")
	b = append(b, ans.JSON...)
	b = append(b, '}')
	return sign(key, TypeIntrospection, b)
}

// Revoke revokes an access token (RFC 7009) by its jti until it expires.
// Tokens that do not verify — unknown, expired, garbage — need nothing and
// give no error: the endpoint answers 200 either way. So do tokens the
// caller may not introspect (its audiences): they stay valid.
func (in *Introspector) Revoke(ctx context.Context, caller Caller, tok string) error {
	v, err := in.verify.Verify(ctx, tok, VerifyOptions{Kind: KindAccessToken})
	if err != nil {
		in.log.DebugContext(ctx, "revocation: nothing to revoke", "caller", caller.ClientID, "reason", err)
		return nil
	}
	if !caller.Entitled(v.Claims.Audience) {
		// RFC 7009 §2.1: a client may only revoke tokens it may
		// introspect. Answered like a token that needs nothing, so the
		// caller learns nothing about tokens of other APIs.
		in.log.InfoContext(ctx, "revocation refused: token audience not allowed for the caller", "caller", caller.ClientID,
			"aud", []string(v.Claims.Audience), "jti", v.Claims.ID)
		return nil
	}
	until := v.Claims.Expiry.Time().Add(in.verify.leeway)
	if err := in.revoked.Revoke(ctx, v.Claims.ID, until); err != nil {
		return fmt.Errorf("revoke token %q: %w", v.Claims.ID, err)
	}
	in.log.InfoContext(ctx, "token revoked", "caller", caller.ClientID, "jti", v.Claims.ID, "sub", v.Claims.Subject, "client_id", v.Claims.ClientID)
	return nil
}
