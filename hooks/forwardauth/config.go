// Package forwardauth is `GET /hooks/forward-auth`: the endpoint gateways
// call before proxying a request — nginx `auth_request`, Traefik
// `ForwardAuth`, Caddy `forward_auth`. It rebuilds the original request from
// the gateway's headers, verifies the bearer token (claimsmith's own keys
// and revocation list, or a configured issuer) with runtime/guard, applies
// the configured path rules and answers 200 with identity headers, or
// 401/403 (a browser's 401 carries the login location and the returnUrl
// cookie for the gateway to pass on).
package forwardauth

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
)

// Pattern is the route of the endpoint.
const Pattern = "GET /hooks/forward-auth"

// Config is the `forward_auth` section of the configuration file.
//
//	forward_auth:
//	  enabled: true
//	  audiences: [https://api.example.com/]
//	  namespace: https://example.com/         # claim paths and authz_overflow
//	  cookie: access_token                     # token cookie for browsers
//	  cache_ttl: 10s                           # bound on a revocation going unseen
//	  headers: {subject: X-Auth-Subject, groups: X-Auth-Groups, roles: X-Auth-Roles, permissions: X-Auth-Permissions}
//	  rule_sets:
//	    - login_url: https://app.example.com/login
//	      rules:
//	        - {path: /public/**, public: true}
//	        - {path: /admin/**, allowed: {roles: [admin]}}
type Config struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Issuer verifies tokens of another issuer (discovery + JWKS). Empty:
	// claimsmith's own keys, issuer and revocation list.
	Issuer  string `yaml:"issuer" json:"issuer,omitempty"`
	JWKSURL string `yaml:"jwks_url" json:"jwks_url,omitempty"`
	// Audiences the token's aud must name one of (or AnyAudience).
	Audiences   []string `yaml:"audiences" json:"audiences,omitempty"`
	AnyAudience bool     `yaml:"any_audience" json:"any_audience,omitempty"`
	Algorithms  []string `yaml:"algorithms" json:"algorithms,omitempty"`
	// Leeway for exp/nbf/iat (Go duration, default 30s).
	Leeway string `yaml:"leeway" json:"leeway,omitempty"`
	// Lenient accepts access tokens that are not strict RFC 9068 (typ JWT,
	// no client_id/jti), as Keycloak and Hydra issue.
	Lenient bool `yaml:"lenient" json:"lenient,omitempty"`
	// Introspection: an RFC 7662 endpoint for tokens carrying
	// <namespace>authz_overflow, or for every token with always: true.
	Introspection *IntrospectionConfig `yaml:"introspection" json:"introspection,omitempty"`
	// Namespace is the claim namespace (default claim paths, overflow claim).
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// ClaimPaths override where groups/roles/permissions/scopes are read.
	ClaimPaths *guard.ClaimPaths `yaml:"claim_paths" json:"claim_paths,omitempty"`
	// Cookie names a cookie carrying the token (the Authorization header wins).
	Cookie string `yaml:"cookie" json:"cookie,omitempty"`
	// CacheTTL bounds how long a verified token is reused (default 10s).
	CacheTTL string `yaml:"cache_ttl" json:"cache_ttl,omitempty"`
	// Headers names the identity headers of a 200 ("-" leaves one out).
	Headers  Headers               `yaml:"headers" json:"headers,omitempty"`
	RuleSets []guard.RuleSetConfig `yaml:"rule_sets" json:"rule_sets,omitempty"`
}

// IntrospectionConfig is the introspection endpoint forward-auth asks.
type IntrospectionConfig struct {
	URL      string `yaml:"url" json:"url"`
	ClientID string `yaml:"client_id" json:"client_id"`
	// ClientSecretEnv names the environment variable holding the secret.
	ClientSecretEnv string            `yaml:"client_secret_env" json:"client_secret_env"`
	Params          map[string]string `yaml:"params" json:"params,omitempty"`
	Always          bool              `yaml:"always" json:"always,omitempty"`
}

// Headers are the identity header names.
type Headers struct {
	Subject     string `yaml:"subject" json:"subject,omitempty"`
	Groups      string `yaml:"groups" json:"groups,omitempty"`
	Roles       string `yaml:"roles" json:"roles,omitempty"`
	Permissions string `yaml:"permissions" json:"permissions,omitempty"`
	Scopes      string `yaml:"scopes" json:"scopes,omitempty"`
}

func (h *Headers) defaults() {
	for _, d := range []struct {
		dst *string
		def string
	}{{&h.Subject, "X-Auth-Subject"}, {&h.Groups, "X-Auth-Groups"}, {&h.Roles, "X-Auth-Roles"}, {&h.Permissions, "X-Auth-Permissions"}, {&h.Scopes, "X-Auth-Scopes"}} {
		switch *d.dst {
		case "":
			*d.dst = d.def
		case "-":
			*d.dst = ""
		default:
			*d.dst = http.CanonicalHeaderKey(*d.dst)
		}
	}
}

func invalid(field, reason string) error {
	return &runtime.ValidationError{Entity: "forward_auth", Field: field, Reason: reason}
}

// Validate checks the section without building anything (for `claimsmith
// check`); New validates too. Errors are *runtime.ValidationError naming the
// key.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	if c.JWKSURL != "" && c.Issuer == "" {
		return invalid("jwks_url", "needs issuer: the issuer whose keys these are")
	}
	for _, u := range []struct{ key, v string }{{"issuer", c.Issuer}, {"jwks_url", c.JWKSURL}} {
		if u.v != "" && !strings.HasPrefix(u.v, "https://") && !strings.HasPrefix(u.v, "http://") {
			return invalid(u.key, fmt.Sprintf("%q is not an http(s) URL", u.v))
		}
	}
	if len(c.Audiences) == 0 && !c.AnyAudience {
		return invalid("audiences", "required: the audiences of the APIs behind the gateway (or any_audience: true)")
	}
	if _, err := c.leeway(); err != nil {
		return err
	}
	if _, err := c.cacheTTL(); err != nil {
		return err
	}
	if c.Namespace != "" && !strings.HasPrefix(c.Namespace, "https://") && !strings.HasPrefix(c.Namespace, "http://") {
		return invalid("namespace", fmt.Sprintf("%q must be an http(s) URL prefix", c.Namespace))
	}
	if in := c.Introspection; in != nil {
		if in.URL == "" || in.ClientID == "" || in.ClientSecretEnv == "" {
			return invalid("introspection", "url, client_id and client_secret_env are required")
		}
	}
	for _, h := range []struct{ key, v string }{{"subject", c.Headers.Subject}, {"groups", c.Headers.Groups}, {"roles", c.Headers.Roles}, {"permissions", c.Headers.Permissions}, {"scopes", c.Headers.Scopes}} {
		if h.v != "" && h.v != "-" && !validHeaderName(h.v) {
			return invalid("headers."+h.key, fmt.Sprintf("%q is not a header name", h.v))
		}
	}
	for i, rs := range c.RuleSets {
		if rs.LoginPage != "" {
			// The gateway serves the upstream on a 200, so an auth endpoint
			// cannot serve a page; login_url is the gateway's way.
			return invalid(fmt.Sprintf("rule_sets[%d].login_page", i), "not available behind a gateway: use login_url")
		}
	}
	return nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

func (c *Config) leeway() (time.Duration, error) {
	if c.Leeway == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.Leeway)
	if err != nil || d < 0 || d > 5*time.Minute {
		return 0, invalid("leeway", fmt.Sprintf("%q is not a duration between 0 and 5m", c.Leeway))
	}
	return d, nil
}

func (c *Config) cacheTTL() (time.Duration, error) {
	if c.CacheTTL == "" {
		return 10 * time.Second, nil
	}
	d, err := time.ParseDuration(c.CacheTTL)
	if err != nil || d < 0 || d > time.Hour {
		return 0, invalid("cache_ttl", fmt.Sprintf("%q is not a duration between 0 and 1h (0: no cache)", c.CacheTTL))
	}
	if d == 0 {
		return -1, nil
	}
	return d, nil
}
