package rules

import (
	"context"

	"github.com/claimsmith/claimsmith/runtime"
)

// AddRequestContextConfig is the add-request-context rule's `config`.
type AddRequestContextConfig struct {
	// IPClaim and CountryClaim name the claims (relative to the namespace;
	// "" leaves that fact out). Defaults: ip, country.
	IPClaim      *string `json:"ip_claim"`
	CountryClaim *string `json:"country_claim"`
	// Tokens selects the tokens (default: the ID token only).
	Tokens *Tokens `json:"tokens"`
}

// AddRequestContext adds the login's IP address and, when the IdP resolved
// it (request.geoip), the country code as namespaced claims.
type AddRequestContext struct {
	ipClaim, countryClaim string
	tokens                Tokens
}

// NewAddRequestContext builds the rule.
func NewAddRequestContext(namespace string, decode runtime.Decoder) (*AddRequestContext, error) {
	var cfg AddRequestContextConfig
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	r := &AddRequestContext{tokens: Tokens{IDToken: true}}
	if cfg.Tokens != nil {
		r.tokens = *cfg.Tokens
	}
	if !r.tokens.IDToken && !r.tokens.AccessToken {
		return nil, &runtime.SettingError{Key: "tokens", Reason: "selects no token"}
	}
	name := func(p *string, def string) string {
		switch {
		case p == nil:
			return claimName(namespace, def)
		case *p == "":
			return ""
		}
		return claimName(namespace, *p)
	}
	r.ipClaim, r.countryClaim = name(cfg.IPClaim, "ip"), name(cfg.CountryClaim, "country")
	if err := checkClaim("ip_claim", r.ipClaim); err != nil {
		return nil, err
	}
	if err := checkClaim("country_claim", r.countryClaim); err != nil {
		return nil, err
	}
	if r.ipClaim == "" && r.countryClaim == "" {
		return nil, &runtime.SettingError{Key: "ip_claim", Reason: "both ip_claim and country_claim are empty: nothing to add"}
	}
	return r, nil
}

// Run implements runtime.Rule. It abstains.
func (r *AddRequestContext) Run(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
	if r.ipClaim != "" && ev.Request.IP != "" {
		r.tokens.set(out, r.ipClaim, ev.Request.IP)
	}
	if r.countryClaim != "" && ev.Request.GeoIP != nil && ev.Request.GeoIP.CountryCode != "" {
		r.tokens.set(out, r.countryClaim, ev.Request.GeoIP.CountryCode)
	}
	return nil
}
