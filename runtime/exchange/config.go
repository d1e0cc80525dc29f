package exchange

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
)

// Config is the exchange section: the trusted upstream issuers and the
// clients allowed to call POST /oauth2/token.
type Config struct {
	// Enabled mounts POST /oauth2/token.
	Enabled bool `yaml:"enabled"`
	// Issuers are the upstream identity providers whose tokens are
	// exchanged; a token from any other issuer is refused (invalid_grant).
	Issuers []IssuerConfig `yaml:"issuers"`
	// Clients are claimsmith's own clients of the token endpoint. More can
	// be registered in the store (claimsmith clients create); a configured
	// client's id cannot be registered there, and wins if an import brings
	// one.
	Clients []ClientConfig `yaml:"clients"`
	// SubjectRate bounds exchanges per upstream subject: at most Burst at
	// once, refilled at PerMinute (defaults 60 and 20). Replaying the same
	// upstream token within its lifetime is allowed, at this rate.
	SubjectRate RateConfig `yaml:"subject_rate"`
}

// RateConfig is a token bucket.
type RateConfig struct {
	PerMinute int `yaml:"per_minute"`
	Burst     int `yaml:"burst"`
}

// IssuerConfig is one trusted upstream OpenID Provider.
type IssuerConfig struct {
	// Issuer must equal the upstream token's iss; its discovery document
	// (issuer + /.well-known/openid-configuration) names the JWKS.
	Issuer string `yaml:"issuer"`
	// JWKSURL skips discovery (Google's and Dex's JWKS are fine either way).
	JWKSURL string `yaml:"jwks_url"`
	// Audiences: the upstream token's aud must contain one of them — the
	// client_id the application holds at the upstream IdP.
	Audiences []string `yaml:"audiences"`
	// Algorithms allowed (default RS256, PS256, ES256, EdDSA; none and HS*
	// are refused whatever is listed).
	Algorithms []string `yaml:"algorithms"`
	// Leeway for exp, nbf and iat (default 30s).
	Leeway time.Duration `yaml:"leeway"`
	// Connection is the connection name of logins from this issuer: group
	// mappings (connectionName, groupName) match against it. Required.
	Connection string `yaml:"connection"`
	// GroupsClaim is the claim carrying the IdP's groups (default
	// "groups"); a dotted path reaches into objects (realm_access.roles).
	GroupsClaim string `yaml:"groups_claim"`
	// UserClaims maps event.user fields to upstream claims (defaults:
	// user_id ← sub, email ← email, email_verified ← email_verified,
	// name ← name, nickname ← nickname, username ← preferred_username,
	// picture ← picture, phone_number ← phone_number).
	UserClaims map[string]string `yaml:"user_claims"`
}

// ClientConfig is one client of the token endpoint.
type ClientConfig struct {
	ClientID string `yaml:"client_id"`
	// SecretHash is "sha256:<hex>" or "pbkdf2-sha256:…", as for
	// introspection clients (`claimsmith token hash-secret`).
	SecretHash string `yaml:"secret_hash"`
	// GrantTypes the client may use (default: token exchange only).
	GrantTypes []string `yaml:"grant_types"`
	// Audiences the client may ask tokens for; the first is the default.
	// None: the tokens' audience is the client_id.
	Audiences []string `yaml:"audiences"`
	// Scopes, when set, are the only scopes the client may request.
	Scopes []string `yaml:"scopes"`
	// Issuers, when set, limits the upstream issuers whose tokens the
	// client may exchange.
	Issuers []string `yaml:"issuers"`
	// JWKS is the client's public JWK set (JSON) for private_key_jwt; a
	// client may have it, a secret_hash, or both.
	JWKS string `yaml:"jwks"`
	// AuthMethod, when set, is the only way the client may authenticate:
	// client_secret_basic, client_secret_post or private_key_jwt (RFC 7591
	// token_endpoint_auth_method). Empty: any it has credentials for.
	AuthMethod string `yaml:"token_endpoint_auth_method"`

	keys *jose.JSONWebKeySet // parsed JWKS
}

// userFields are the event.user fields an upstream claim can fill.
var userFields = []string{"user_id", "email", "email_verified", "name", "nickname", "username", "picture", "phone_number"}

func defaultUserClaims() map[string]string {
	return map[string]string{"user_id": "sub", "email": "email", "email_verified": "email_verified", "name": "name",
		"nickname": "nickname", "username": "preferred_username", "picture": "picture", "phone_number": "phone_number"}
}

func (c *Config) defaults() {
	if c.SubjectRate.PerMinute == 0 {
		c.SubjectRate.PerMinute = 20
	}
	if c.SubjectRate.Burst == 0 {
		c.SubjectRate.Burst = 60
	}
	for i := range c.Clients {
		if len(c.Clients[i].GrantTypes) == 0 {
			c.Clients[i].GrantTypes = []string{GrantTokenExchange}
		}
	}
	for i := range c.Issuers {
		is := &c.Issuers[i]
		if is.GroupsClaim == "" {
			is.GroupsClaim = "groups"
		}
		m := defaultUserClaims()
		for k, v := range is.UserClaims {
			m[k] = v
		}
		is.UserClaims = m
	}
}

func bad(field, format string, args ...any) error {
	return &runtime.ValidationError{Entity: "exchange", Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks the section; errors name the field as a path
// ("issuers[0].connection") so the loader can point at the line.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	if c.SubjectRate.PerMinute < 0 || c.SubjectRate.Burst < 0 {
		return bad("subject_rate", "must not be negative")
	}
	issuers := map[string]bool{}
	for i, is := range c.Issuers {
		at := "issuers[" + strconv.Itoa(i) + "]"
		u, err := url.Parse(is.Issuer)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return bad(at+".issuer", "%q must be an http(s) URL", is.Issuer)
		}
		if issuers[is.Issuer] {
			return bad(at+".issuer", "%q is listed twice", is.Issuer)
		}
		issuers[is.Issuer] = true
		if len(is.Audiences) == 0 {
			return bad(at+".audiences", "required: the client_id(s) the upstream tokens are issued to")
		}
		if is.Connection == "" {
			return bad(at+".connection", "required: the connection name group mappings match")
		}
		if is.Leeway < 0 || is.Leeway > 5*time.Minute {
			return bad(at+".leeway", "must be between 0 and 5m")
		}
		for _, a := range is.Algorithms {
			if !slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}, a) {
				return bad(at+".algorithms", "%q is not an asymmetric JWS algorithm (none and HS* are never accepted)", a)
			}
		}
		for k, v := range is.UserClaims {
			if !slices.Contains(userFields, k) {
				return bad(at+".user_claims."+k, "is not a user field (one of %v)", userFields)
			}
			if v == "" {
				return bad(at+".user_claims."+k, "names no claim")
			}
		}
	}
	ids := map[string]bool{}
	for i, cl := range c.Clients {
		at := "clients[" + strconv.Itoa(i) + "]"
		if ids[cl.ClientID] && cl.ClientID != "" {
			return bad(at+".client_id", "%q is listed twice", cl.ClientID)
		}
		ids[cl.ClientID] = true
		if err := cl.check(at+".", issuers); err != nil {
			return err
		}
	}
	return nil
}

// check checks one client; at prefixes the field names ("clients[0].").
// With issuers nil (a store client) the issuers it names are not checked
// against the configured ones.
func (cl *ClientConfig) check(at string, issuers map[string]bool) error {
	if cl.ClientID == "" {
		return bad(at+"client_id", "is required")
	}
	if cl.SecretHash == "" && cl.JWKS == "" {
		return bad(at+"secret_hash", "a client needs a secret_hash or jwks (private_key_jwt)")
	}
	if cl.JWKS != "" {
		if _, err := parseClientJWKS(cl.JWKS); err != nil {
			return bad(at+"jwks", "%v", err)
		}
	}
	switch cl.AuthMethod {
	case "":
	case AuthSecretBasic, AuthSecretPost:
		if cl.SecretHash == "" {
			return bad(at+"secret_hash", "is required for token_endpoint_auth_method %s", cl.AuthMethod)
		}
	case AuthPrivateKeyJWT:
		if cl.JWKS == "" {
			return bad(at+"jwks", "is required for token_endpoint_auth_method %s", cl.AuthMethod)
		}
	default:
		return bad(at+"token_endpoint_auth_method", "%q is not one of %v", cl.AuthMethod, AuthMethods)
	}
	if len(cl.GrantTypes) == 0 {
		return bad(at+"grant_types", "is empty (%s, %s)", GrantTokenExchange, GrantClientCredentials)
	}
	for _, g := range cl.GrantTypes {
		if g != GrantTokenExchange && g != GrantClientCredentials {
			return bad(at+"grant_types", "%q is not supported (%s or %s)", g, GrantTokenExchange, GrantClientCredentials)
		}
	}
	for _, a := range cl.Audiences {
		if a == "" {
			return bad(at+"audiences", "has an empty audience")
		}
	}
	for _, s := range cl.Scopes {
		if !runtime.ValidScope(s) {
			return bad(at+"scopes", "%q is not a valid scope token", s)
		}
	}
	for _, is := range cl.Issuers {
		if issuers == nil {
			if u, err := url.Parse(is); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				return bad(at+"issuers", "%q must be an http(s) URL", is)
			}
		} else if !issuers[is] {
			return bad(at+"issuers", "%q is not a configured issuer", is)
		}
	}
	return nil
}
