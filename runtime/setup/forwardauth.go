package setup

import (
	"errors"
	"strings"

	"github.com/claimsmith/claimsmith/hooks/forwardauth"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
)

// buildForwardAuth builds GET /hooks/forward-auth from the forward_auth
// section (nil when it is not enabled). ts gives claimsmith's own issuer,
// keys and revocation list; Validate passes nil and an empty key set, so it
// builds everything (path rules, pages, secrets) without serving.
func (c *Config) buildForwardAuth(env Env, ts *TokenService) (*forwardauth.Handler, error) {
	if !c.ForwardAuth.Enabled {
		return nil, nil
	}
	deps := forwardauth.Deps{Getenv: env.Getenv, BaseDir: c.Dir(), Logger: env.Log, Now: env.Now,
		Issuer: "https://validation.invalid", Keys: guard.StaticKeys{}}
	if ts != nil {
		deps.Issuer, deps.Keys, deps.Revocations = ts.Minter.Issuer(), forwardauth.TokenKeys{Keys: ts.Keys}, ts.Revoked
	}
	h, err := forwardauth.New(c.ForwardAuth, deps)
	if err != nil {
		at := keyPath{"forward_auth"}
		var ve *runtime.ValidationError
		if errors.As(err, &ve) && ve.Field != "" {
			return nil, c.bad(at.with(fieldPath(ve.Field)...), invalidf("%s", ve.Reason))
		}
		return nil, c.bad(at, invalidf("%s", err))
	}
	return h, nil
}

// fieldPath splits "rule_sets[0].rules[1].path" into keyPath segments.
func fieldPath(f string) []string {
	var out []string
	for _, part := range strings.Split(f, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			switch {
			case i < 0:
				out, part = append(out, part), ""
			case i > 0:
				out, part = append(out, part[:i]), part[i:]
			default:
				j := strings.IndexByte(part, ']')
				if j < 0 {
					out, part = append(out, part), ""
					continue
				}
				out, part = append(out, part[:j+1]), part[j+1:]
			}
		}
	}
	return out
}
