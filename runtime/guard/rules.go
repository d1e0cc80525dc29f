package guard

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// RuleSetConfig is one section of a site with its own path rules and pages
// (the `authorized` add-on's configuration). Rule sets are tried in order;
// the first whose Prefix holds the path applies.
type RuleSetConfig struct {
	Name string `yaml:"name" json:"name,omitempty"`
	// Prefix is the section's path prefix (default "/": everything).
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// LoginURL is where an unauthenticated browser is sent (302), a path
	// ("/login") or an absolute http(s) URL (the IdP). The path it came for
	// is kept in the returnUrl cookie.
	LoginURL string `yaml:"login_url" json:"login_url,omitempty"`
	// LoginPage is an HTML file served at the section's root to browsers
	// that are not logged in (single-page apps); other paths redirect there.
	LoginPage string `yaml:"login_page" json:"login_page,omitempty"`
	// ForbiddenPage is an HTML file served with 403 to browsers.
	ForbiddenPage string `yaml:"forbidden_page" json:"forbidden_page,omitempty"`
	// ReturnCookie names the cookie that carries the return path (default
	// "returnUrl").
	ReturnCookie string `yaml:"return_cookie" json:"return_cookie,omitempty"`
	// Unmatched is what a path no rule matches gets: "deny" (default: fail
	// closed), "authenticated" (any valid token) or "allow".
	Unmatched string           `yaml:"unmatched" json:"unmatched,omitempty"`
	Rules     []PathRuleConfig `yaml:"rules" json:"rules,omitempty"`
}

// PathRuleConfig is one path rule. The first rule whose Path and Methods
// match the request decides.
type PathRuleConfig struct {
	// Path is a pattern: "/admin/**", "/api/*/items", "/static/*.css".
	Path string `yaml:"path" json:"path"`
	// Methods limits the rule to these methods (default all; GET covers HEAD).
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Public lets anyone through, token or not.
	Public bool `yaml:"public" json:"public,omitempty"`
	// Allowed: any one value per kind, every kind given must hold. Empty:
	// any authenticated caller.
	Allowed Allowed `yaml:"allowed" json:"allowed,omitempty"`
	// DeniedRoles refuse a caller holding any of them, whatever Allowed says.
	DeniedRoles []string `yaml:"denied_roles" json:"denied_roles,omitempty"`
}

// Allowed lists what a rule accepts.
type Allowed struct {
	Groups      []string `yaml:"groups" json:"groups,omitempty"`
	Roles       []string `yaml:"roles" json:"roles,omitempty"`
	Permissions []string `yaml:"permissions" json:"permissions,omitempty"`
	// Scopes must all be granted (RFC 6750 insufficient_scope otherwise).
	Scopes []string `yaml:"scopes" json:"scopes,omitempty"`
}

type unmatched uint8

const (
	unmatchedDeny unmatched = iota
	unmatchedAuthenticated
	unmatchedAllow
)

type ruleSet struct {
	name          string
	prefix        string // "/" or "/section" without trailing slash
	loginURL      string
	loginPath     string // the login URL's path when it is on this site
	loginPage     []byte
	forbiddenPage []byte
	returnCookie  string
	unmatched     unmatched
	rules         []pathRule
}

type pathRule struct {
	index   int
	pat     pattern
	methods []string
	public  bool
	allowed Allowed
	denied  []string
}

// compileRuleSets validates cfgs; page files are read relative to baseDir.
func compileRuleSets(cfgs []RuleSetConfig, baseDir string) ([]ruleSet, error) {
	out := make([]ruleSet, 0, len(cfgs))
	for i, c := range cfgs {
		field := func(f string) string { return fmt.Sprintf("rule_sets[%d].%s", i, f) }
		bad := func(f, reason string) error {
			return &runtime.ValidationError{Entity: "guard", ID: c.Name, Field: field(f), Reason: reason}
		}
		rs := ruleSet{name: c.Name, prefix: "/", returnCookie: c.ReturnCookie}
		if rs.name == "" {
			rs.name = fmt.Sprintf("rule_sets[%d]", i)
		}
		if c.Prefix != "" {
			if !strings.HasPrefix(c.Prefix, "/") || strings.ContainsAny(c.Prefix, "*?") {
				return nil, bad("prefix", fmt.Sprintf("%q must be a path starting with /", c.Prefix))
			}
			rs.prefix = cleanPath(c.Prefix)
		}
		if rs.returnCookie == "" {
			rs.returnCookie = "returnUrl"
		}
		if !validCookieName(rs.returnCookie) {
			return nil, bad("return_cookie", fmt.Sprintf("%q is not a cookie name", rs.returnCookie))
		}
		switch c.Unmatched {
		case "", "deny":
		case "authenticated":
			rs.unmatched = unmatchedAuthenticated
		case "allow":
			rs.unmatched = unmatchedAllow
		default:
			return nil, bad("unmatched", fmt.Sprintf("%q is not one of deny, authenticated, allow", c.Unmatched))
		}
		if c.LoginURL != "" && c.LoginPage != "" {
			return nil, bad("login_page", "set login_url or login_page, not both")
		}
		if c.LoginURL != "" {
			u, err := url.Parse(c.LoginURL)
			switch {
			case err != nil:
				return nil, bad("login_url", err.Error())
			case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(c.LoginURL, "//"):
				rs.loginPath = cleanPath(u.Path)
			case (u.Scheme == "https" || u.Scheme == "http") && u.Host != "":
			default:
				return nil, bad("login_url", fmt.Sprintf("%q is neither a path nor an absolute http(s) URL", c.LoginURL))
			}
			rs.loginURL = c.LoginURL
		}
		for _, pg := range []struct {
			key, file string
			dst       *[]byte
		}{{"login_page", c.LoginPage, &rs.loginPage}, {"forbidden_page", c.ForbiddenPage, &rs.forbiddenPage}} {
			if pg.file == "" {
				continue
			}
			f := pg.file
			if !filepath.IsAbs(f) {
				f = filepath.Join(baseDir, f)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, bad(pg.key, err.Error())
			}
			*pg.dst = b
		}
		for j, r := range c.Rules {
			pat, err := compilePattern(r.Path)
			if err != nil {
				return nil, bad(fmt.Sprintf("rules[%d].path", j), err.Error())
			}
			pr := pathRule{index: j, pat: pat, public: r.Public, allowed: r.Allowed, denied: r.DeniedRoles}
			for _, m := range r.Methods {
				m = strings.ToUpper(strings.TrimSpace(m))
				if m == "" || strings.ContainsAny(m, " \t/") {
					return nil, bad(fmt.Sprintf("rules[%d].methods", j), fmt.Sprintf("%q is not a method", m))
				}
				pr.methods = append(pr.methods, m)
			}
			if r.Public && (len(r.DeniedRoles) > 0 || !r.Allowed.empty()) {
				return nil, bad(fmt.Sprintf("rules[%d].public", j), "a public rule cannot also list allowed or denied values")
			}
			rs.rules = append(rs.rules, pr)
		}
		out = append(out, rs)
	}
	return out, nil
}

func (a Allowed) empty() bool {
	return len(a.Groups)+len(a.Roles)+len(a.Permissions)+len(a.Scopes) == 0
}

func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// holds reports whether p is in the section.
func (rs *ruleSet) holds(p string) bool {
	if rs.prefix == "/" {
		return true
	}
	return p == rs.prefix || (strings.HasPrefix(p, rs.prefix) && p[len(rs.prefix)] == '/')
}

// find returns the first rule matching method and the cleaned path, or nil.
func (rs *ruleSet) find(method, p string) *pathRule {
	for i := range rs.rules {
		r := &rs.rules[i]
		if len(r.methods) > 0 && !slices.Contains(r.methods, method) && !(method == "HEAD" && slices.Contains(r.methods, "GET")) {
			continue
		}
		if r.pat.match(p) {
			return r
		}
	}
	return nil
}

// check applies an authenticated principal to a rule.
func (r *pathRule) check(p *Principal) error {
	if len(r.denied) > 0 && p.HasRole(r.denied...) {
		return &ForbiddenError{Reason: ErrNotAllowed, Voter: "denied_roles", Detail: "holds a denied role"}
	}
	a := r.allowed
	for _, k := range []struct {
		kind       string
		have, want []string
	}{{"groups", p.Groups, a.Groups}, {"roles", p.Roles, a.Roles}, {"permissions", p.Permissions, a.Permissions}} {
		if len(k.want) > 0 && !anyOf(k.have, k.want) {
			return &ForbiddenError{Reason: ErrNotAllowed, Voter: "allowed." + k.kind, Detail: "needs one of the " + k.kind + " " + strings.Join(k.want, ", ")}
		}
	}
	if len(a.Scopes) > 0 && !allOf(p.Scopes, a.Scopes) {
		return &ForbiddenError{Reason: ErrInsufficientScope, Voter: "allowed.scopes", Scopes: a.Scopes}
	}
	return nil
}
