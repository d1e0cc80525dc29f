package guard

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ClaimPaths says where a token keeps groups, roles, permissions and scopes.
// Each entry is a dotted path into the claim set ("realm_access.roles",
// "ext.https://example.com/roles", "app_metadata.authorization.groups") or a
// namespaced URL claim ("https://example.com/roles"); a key may itself
// contain dots, the longest key present wins. Values from every path of a
// kind are merged, de-duplicated, in path order. An array of strings is
// read as it is; an object's keys are its values (Zitadel's roles claim); a
// string is one value, except for scopes, where it is a space-delimited list
// (RFC 9068 `scope`).
type ClaimPaths struct {
	Groups      []string `yaml:"groups" json:"groups,omitempty"`
	Roles       []string `yaml:"roles" json:"roles,omitempty"`
	Permissions []string `yaml:"permissions" json:"permissions,omitempty"`
	Scopes      []string `yaml:"scopes" json:"scopes,omitempty"`
}

// DefaultClaimPaths are where claimsmith puts them under namespace (an
// http(s) URL prefix such as "https://example.com/"), the same names inside
// Hydra's `ext`, the bare names (allow_unnamespaced), app_metadata's
// `authorization` object (where the authorization rule persists them and
// Auth0 rules used to copy it, namespaced or not), Keycloak's realm roles,
// and the RFC 9068 `scope` string or an `scp` array. user_metadata is never
// read: users can edit it.
func DefaultClaimPaths(namespace string) ClaimPaths {
	kind := func(name string) []string {
		var out []string
		if namespace != "" {
			out = append(out, namespace+name, "ext."+namespace+name, namespace+"app_metadata.authorization."+name)
		}
		return append(out, name, "ext."+name, "app_metadata.authorization."+name)
	}
	c := ClaimPaths{Groups: kind("groups"), Roles: kind("roles"), Permissions: kind("permissions"), Scopes: []string{"scope", "scp"}}
	c.Roles = append(c.Roles, "realm_access.roles")
	return c
}

// claimPath is one compiled path: keys[i][j] is segs[i:j] joined by dots,
// so lookups never build strings.
type claimPath struct {
	raw  string
	n    int
	keys [][]string
}

func compilePath(p string) (claimPath, error) {
	if strings.TrimSpace(p) == "" {
		return claimPath{}, fmt.Errorf("empty claim path")
	}
	if len(p) > 512 {
		return claimPath{}, fmt.Errorf("claim path of %d bytes is longer than 512", len(p))
	}
	segs := strings.Split(p, ".")
	if len(segs) > 16 {
		return claimPath{}, fmt.Errorf("claim path %q has more than 16 segments", p)
	}
	cp := claimPath{raw: p, n: len(segs), keys: make([][]string, len(segs))}
	for i := range segs {
		cp.keys[i] = make([]string, len(segs)+1)
		for j := i + 1; j <= len(segs); j++ {
			cp.keys[i][j] = strings.Join(segs[i:j], ".")
		}
	}
	return cp, nil
}

// lookup finds the value at the path, trying the longest key first at each
// level and backtracking, so "https://example.com/roles" and
// "ext.https://example.com/roles" both resolve.
func (cp *claimPath) lookup(m map[string]any, i int) (any, bool) {
	for j := cp.n; j > i; j-- {
		v, ok := m[cp.keys[i][j]]
		if !ok {
			continue
		}
		if j == cp.n {
			return v, true
		}
		if sub, ok := v.(map[string]any); ok {
			if v, ok := cp.lookup(sub, j); ok {
				return v, true
			}
		}
	}
	return nil, false
}

type compiledPaths struct {
	groups, roles, permissions, scopes []claimPath
}

func (c ClaimPaths) compile() (compiledPaths, error) {
	var out compiledPaths
	for _, k := range []struct {
		name string
		in   []string
		dst  *[]claimPath
	}{{"groups", c.Groups, &out.groups}, {"roles", c.Roles, &out.roles}, {"permissions", c.Permissions, &out.permissions}, {"scopes", c.Scopes, &out.scopes}} {
		for i, p := range k.in {
			cp, err := compilePath(p)
			if err != nil {
				return out, fmt.Errorf("claim_paths.%s[%d]: %w", k.name, i, err)
			}
			*k.dst = append(*k.dst, cp)
		}
	}
	return out, nil
}

// collect reads every path into a de-duplicated list.
func collect(claims map[string]any, paths []claimPath, split bool) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		for _, x := range out {
			if x == s {
				return
			}
		}
		out = append(out, s)
	}
	for i := range paths {
		v, ok := paths[i].lookup(claims, 0)
		if !ok {
			continue
		}
		switch t := v.(type) {
		case string:
			if split {
				for _, f := range strings.Fields(t) {
					add(f)
				}
			} else {
				add(t)
			}
		case []any:
			for _, e := range t {
				if s, ok := e.(string); ok {
					add(s)
				}
			}
		case []string:
			for _, s := range t {
				add(s)
			}
		case map[string]any:
			// Zitadel: {"urn:zitadel:iam:org:project:roles": {"admin": {…}}},
			// the keys are the values; sorted, so output is stable.
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				add(k)
			}
		}
	}
	return out
}

// Extract reads the values at one claim path (for tests, tools and field
// rules); a string is one value.
func Extract(claims map[string]any, path string) ([]string, error) {
	cp, err := compilePath(path)
	if err != nil {
		return nil, err
	}
	return collect(claims, []claimPath{cp}, false), nil
}

// newPrincipal builds a principal from a verified claim set.
func (cp *compiledPaths) newPrincipal(claims map[string]any) *Principal {
	p := &Principal{
		Subject:     str(claims["sub"]),
		Issuer:      str(claims["iss"]),
		ClientID:    str(claims["client_id"]),
		TokenID:     str(claims["jti"]),
		Claims:      claims,
		Groups:      collect(claims, cp.groups, false),
		Roles:       collect(claims, cp.roles, false),
		Permissions: collect(claims, cp.permissions, false),
		Scopes:      collect(claims, cp.scopes, true),
	}
	if p.ClientID == "" {
		p.ClientID = str(claims["azp"])
	}
	switch a := claims["aud"].(type) {
	case string:
		p.Audience = []string{a}
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok {
				p.Audience = append(p.Audience, s)
			}
		}
	}
	if exp, ok := numericDate(claims["exp"]); ok {
		p.ExpiresAt = exp
	}
	return p
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// numericDate reads an RFC 7519 NumericDate (a json.Number or float64).
func numericDate(v any) (time.Time, bool) {
	var f float64
	switch t := v.(type) {
	case json.Number:
		x, err := t.Float64()
		if err != nil {
			return time.Time{}, false
		}
		f = x
	case float64:
		f = t
	default:
		return time.Time{}, false
	}
	if f != f || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0).UTC(), true
}
