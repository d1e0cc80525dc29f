package forwardauth_test

import (
	"os"

	"errors"
	"gopkg.in/yaml.v3"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/forwardauth"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
)

func TestForwardAuthHeaders(t *testing.T) {
	cs := newClaimsmith(t)
	h, err := forwardauth.New(config("10s"), cs.deps())
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	admin := cs.mint(t, "auth0|alice", []string{"admin", "a,b"}, []string{"Staff"}, []string{"employee:read"}).Token
	viewer := cs.mint(t, "auth0|bob", []string{"viewer"}, nil, nil).Token
	type hdr map[string]string
	cases := []struct {
		name    string
		query   string
		headers hdr
		status  int
		check   func(t *testing.T, res *http.Response)
	}{
		{"nginx: admin", "", hdr{"X-Original-URI": "/admin/users?x=1", "X-Original-Method": "GET", "Authorization": "Bearer " + admin}, 200,
			func(t *testing.T, res *http.Response) {
				if res.Header.Get("X-Auth-Subject") != "auth0|alice" || res.Header.Get("X-Auth-Roles") != "admin,a%2Cb" ||
					res.Header.Get("X-Auth-Groups") != "Staff" || res.Header.Get("X-Auth-Permissions") != "employee:read" ||
					res.Header.Get("X-Auth-Scopes") != "openid,read:employees" {
					t.Fatalf("identity headers %v", res.Header)
				}
			}},
		{"traefik: X-Forwarded-*", "", hdr{"X-Forwarded-Uri": "/admin/users", "X-Forwarded-Method": "POST", "X-Forwarded-Host": "app.example.com", "Authorization": "Bearer " + admin}, 200, nil},
		{"X-Forwarded-Uri wins over X-Original-URI", "", hdr{"X-Forwarded-Uri": "/public/x", "X-Original-URI": "/admin/x"}, 200, nil},
		{"token from the cookie", "", hdr{"X-Original-URI": "/admin/", "Cookie": "access_token=" + admin}, 200, nil},
		{"wrong role", "", hdr{"X-Original-URI": "/admin/users", "Authorization": "Bearer " + viewer}, 403, nil},
		{"API without token", "", hdr{"X-Original-URI": "/api/employees", "Accept": "application/json"}, 401,
			func(t *testing.T, res *http.Response) {
				if res.Header.Get("Location") != "" || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("API 401: %v", res.Header)
				}
			}},
		{"browser without token: 401 with the login location", "", hdr{"X-Original-URI": "/admin/users?tab=2", "Accept": "text/html", "X-Forwarded-Proto": "https"}, 401,
			func(t *testing.T, res *http.Response) {
				if res.Header.Get("Location") != "/login" {
					t.Fatalf("Location %q", res.Header.Get("Location"))
				}
				c := res.Cookies()
				if len(c) != 1 || c[0].Name != "returnUrl" || !c[0].Secure || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode {
					t.Fatalf("cookie %v", c)
				}
				if v, _ := url.QueryUnescape(c[0].Value); v != "/admin/users?tab=2" {
					t.Fatalf("return path %q", v)
				}
			}},
		{"browser, redirect=true (Traefik, Caddy): the 302 itself", "?redirect=true", hdr{"X-Forwarded-Uri": "/admin", "Accept": "text/html"}, 302, nil},
		{"public", "", hdr{"X-Original-URI": "/public/logo.png"}, 200,
			func(t *testing.T, res *http.Response) {
				if res.Header.Get("X-Auth-Subject") != "" {
					t.Fatal("no identity without a token")
				}
			}},
		{"encoded dot-dot cannot reach public", "", hdr{"X-Original-URI": "/public/%2e%2e/admin/users"}, 401, nil},
		{"no original URI", "", hdr{}, 400, nil},
		{"bad URI", "", hdr{"X-Original-URI": "no-slash"}, 400, nil},
		{"bad method", "", hdr{"X-Original-URI": "/", "X-Original-Method": "GE T"}, 400, nil},
		{"revoked", "", hdr{"X-Original-URI": "/admin/users"}, 401, nil}, // token set below
	}
	revoked := cs.mint(t, "auth0|carol", []string{"admin"}, nil, nil)
	if err := cs.revoked.Revoke(bg, revoked.JTI, revoked.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	cases[len(cases)-1].headers["Authorization"] = "Bearer " + revoked.Token
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+"/hooks/forward-auth"+c.query, nil)
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			res, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.check != nil {
				c.check(t, res)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := config("")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(*forwardauth.Config)
		key  string
	}{
		{"no audience", func(c *forwardauth.Config) { c.Audiences = nil }, "audiences"},
		{"issuer scheme", func(c *forwardauth.Config) { c.Issuer = "ftp://x" }, "issuer"},
		{"jwks without issuer", func(c *forwardauth.Config) { c.JWKSURL = "https://x/jwks" }, "jwks_url"},
		{"leeway", func(c *forwardauth.Config) { c.Leeway = "1h" }, "leeway"},
		{"cache ttl", func(c *forwardauth.Config) { c.CacheTTL = "forever" }, "cache_ttl"},
		{"namespace", func(c *forwardauth.Config) { c.Namespace = "example" }, "namespace"},
		{"introspection", func(c *forwardauth.Config) { c.Introspection = &forwardauth.IntrospectionConfig{URL: "https://x"} }, "introspection"},
		{"header name", func(c *forwardauth.Config) { c.Headers.Roles = "X Roles" }, "headers.roles"},
		{"login page", func(c *forwardauth.Config) { c.RuleSets[0].LoginPage = "x.html"; c.RuleSets[0].LoginURL = "" }, "rule_sets[0].login_page"},
	} {
		cfg := config("")
		c.mod(&cfg)
		var ve *runtime.ValidationError
		if err := cfg.Validate(); !errors.As(err, &ve) || ve.Field != c.key {
			t.Errorf("%s: want an error on %s, got %v", c.name, c.key, err)
		}
	}
	// New also refuses bad rule sets (guard validates them).
	bad := config("")
	bad.RuleSets[0].Rules[0].Path = "login"
	if _, err := forwardauth.New(bad, newClaimsmith(t).deps()); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad rule: %v", err)
	}
	if _, err := forwardauth.New(config(""), forwardauth.Deps{}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("no own keys and no issuer: %v", err)
	}
}

// TestSwitchReload: a reload swaps the rules atomically.
func TestSwitchReload(t *testing.T) {
	cs := newClaimsmith(t)
	var sw forwardauth.Switch
	base := serve(t, &sw)
	get := func() int {
		req, _ := http.NewRequest("GET", base, nil)
		req.Header.Set("X-Original-URI", "/reports")
		req.Header.Set("Authorization", "Bearer "+cs.mint(t, "u", []string{"viewer"}, nil, nil).Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := get(); s != 404 {
		t.Fatalf("disabled: %d", s)
	}
	h1, err := forwardauth.New(config("1s"), cs.deps())
	if err != nil {
		t.Fatal(err)
	}
	sw.Store(h1)
	if s := get(); s != 403 {
		t.Fatalf("/reports unmatched: %d", s)
	}
	cfg := config("1s")
	cfg.RuleSets[0].Rules = append(cfg.RuleSets[0].Rules, guard.PathRuleConfig{Path: "/reports", Allowed: guard.Allowed{Roles: []string{"viewer"}}})
	h2, err := forwardauth.New(cfg, cs.deps())
	if err != nil {
		t.Fatal(err)
	}
	sw.Store(h2)
	if s := get(); s != 200 {
		t.Fatalf("after reload: %d", s)
	}
	_ = time.Second
}

func TestJoinEscaped(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"a", "b"}, "a,b"},
		{[]string{"a,b", "c"}, "a%2Cb,c"},
		{[]string{"x\r\nSet-Cookie: y"}, "x%0D%0ASet-Cookie:%20y"},
		{[]string{"café", "50%"}, "caf%C3%A9,50%25"},
		{nil, ""},
	} {
		if got := forwardauth.JoinEscaped(c.in); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
	}
}

// TestSampleConfig: samples/gateway/claimsmith.yaml decodes strictly and
// builds.
func TestSampleConfig(t *testing.T) {
	f, err := os.Open("../../samples/gateway/claimsmith.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var doc struct {
		ForwardAuth forwardauth.Config `yaml:"forward_auth"`
	}
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if _, err := forwardauth.New(doc.ForwardAuth, newClaimsmith(t).deps()); err != nil {
		t.Fatal(err)
	}
	if len(doc.ForwardAuth.RuleSets) != 1 || len(doc.ForwardAuth.RuleSets[0].Rules) != 5 {
		t.Fatalf("decoded %+v", doc.ForwardAuth)
	}
}
