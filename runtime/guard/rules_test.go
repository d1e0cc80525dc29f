package guard_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
)

// siteRules is a site with an admin section, an API and a public area.
func siteRules(t *testing.T) []guard.RuleSetConfig {
	dir := t.TempDir()
	must := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return []guard.RuleSetConfig{
		{Name: "app", Prefix: "/app", LoginPage: must("login.html", "<h1>log in</h1>"), Rules: []guard.PathRuleConfig{
			{Path: "/app/**"},
		}},
		{Name: "site", LoginURL: "/login", ForbiddenPage: must("403.html", "<h1>no</h1>"), Rules: []guard.PathRuleConfig{
			{Path: "/login", Public: true},
			{Path: "/public/**", Public: true},
			{Path: "/static/*.css", Public: true},
			{Path: "/admin/**", DeniedRoles: []string{"suspended"}, Allowed: guard.Allowed{Roles: []string{"admin"}}},
			{Path: "/hr/**", Allowed: guard.Allowed{Groups: []string{"HR"}, Permissions: []string{"employee:read"}}},
			{Path: "/api/*/items", Methods: []string{"GET"}, Allowed: guard.Allowed{Scopes: []string{"read:employees"}}},
			{Path: "/api/*/items", Methods: []string{"POST", "DELETE"}, Allowed: guard.Allowed{Scopes: []string{"write:employees"}}},
			{Path: "/me", Allowed: guard.Allowed{}},
		}},
	}
}

func TestPathRulesTable(t *testing.T) {
	f := newFixture(t)
	g := f.guard(t, guard.Options{RuleSets: siteRules(t)})
	admin := f.token(t, map[string]any{ns + "roles": []string{"admin"}})
	suspendedAdmin := f.token(t, map[string]any{ns + "roles": []string{"admin", "suspended"}, "jti": "j-s"})
	viewer := f.token(t, map[string]any{ns + "roles": []string{"viewer"}, "jti": "j-v"})
	hr := f.token(t, map[string]any{ns + "groups": []string{"HR"}, ns + "permissions": []string{"employee:read"}, "jti": "j-h"})
	hrNoPerm := f.token(t, map[string]any{ns + "groups": []string{"HR"}, "jti": "j-hn"})
	writer := f.token(t, map[string]any{"scope": "write:employees", "jti": "j-w"})
	const api, html = "application/json", "text/html,application/xhtml+xml"
	cases := []struct {
		name, method, path, token, accept string
		status                            int
		location                          string
	}{
		{"public login page", "GET", "/login", "", html, 200, ""},
		{"public tree", "GET", "/public/a/b/c", "", api, 200, ""},
		{"public with bad token is still public", "GET", "/public/x", "garbage", api, 200, ""},
		{"glob segment", "GET", "/static/site.css", "", api, 200, ""},
		{"glob segment does not cross /", "GET", "/static/a/site.css", "", api, 401, ""},
		{"admin, no token, API", "GET", "/admin/users", "", api, 401, ""},
		{"admin, no token, browser", "GET", "/admin/users", "", html, 302, "/login"},
		{"admin, no token, browser POST gets 401", "POST", "/admin/users", "", html, 401, ""},
		{"admin, wrong role", "GET", "/admin/users", viewer, api, 403, ""},
		{"admin, right role", "GET", "/admin/users", admin, api, 200, ""},
		{"admin root matches **", "GET", "/admin", admin, api, 200, ""},
		{"admin, denied role wins", "GET", "/admin/users", suspendedAdmin, api, 403, ""},
		{"dot-dot cannot escape into public", "GET", "/public/../admin/users", "", api, 401, ""},
		{"double slash cleaned", "GET", "//admin//users", viewer, api, 403, ""},
		{"every kind must hold", "GET", "/hr/salaries", hrNoPerm, api, 403, ""},
		{"group and permission", "GET", "/hr/salaries", hr, api, 200, ""},
		{"scope for GET", "GET", "/api/v1/items", admin, api, 200, ""},
		{"HEAD follows GET", "HEAD", "/api/v1/items", admin, api, 200, ""},
		{"scope missing for POST", "POST", "/api/v1/items", admin, api, 403, ""},
		{"scope for POST", "POST", "/api/v1/items", writer, api, 200, ""},
		{"method no rule matches: unmatched deny", "PUT", "/api/v1/items", writer, api, 403, ""},
		{"* is one segment", "GET", "/api/v1/v2/items", admin, api, 403, ""},
		{"any authenticated", "GET", "/me", viewer, api, 200, ""},
		{"unmatched path denied", "GET", "/elsewhere", admin, api, 403, ""},
		{"unmatched, no token", "GET", "/elsewhere", "", api, 401, ""},
		{"invalid token", "GET", "/me", "garbage", api, 401, ""},
		{"SPA root serves login page", "GET", "/app", "", html, 200, ""},
		{"SPA deep link redirects to root", "GET", "/app/reports/1", "", html, 302, "/app"},
		{"SPA API call", "GET", "/app/reports/1", "", api, 401, ""},
		{"SPA logged in", "GET", "/app/reports/1", viewer, html, 200, ""},
		{"browser forbidden page", "GET", "/admin/x", viewer, html, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.path, nil)
			r.URL.Path = c.path // keep //admin//users as sent
			r.Header.Set("Accept", c.accept)
			if c.token != "" {
				r.Header.Set("Authorization", "Bearer "+c.token)
			}
			w := httptest.NewRecorder()
			reached := false
			g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true })).ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, c.status, w.Body)
			}
			if c.status == 200 && !reached && !strings.Contains(w.Body.String(), "log in") {
				t.Fatal("allowed but the handler was not reached")
			}
			if c.status != 200 && reached {
				t.Fatal("refused but the handler ran")
			}
			if got := w.Header().Get("Location"); got != c.location {
				t.Fatalf("Location %q, want %q", got, c.location)
			}
			if c.status == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge: %v", w.Header())
			}
		})
	}
}

func TestChallengeCodes(t *testing.T) {
	f := newFixture(t)
	g := f.guard(t, guard.Options{RuleSets: siteRules(t), Realm: "api"})
	do := func(auth, path, method string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		g.Middleware(http.NotFoundHandler()).ServeHTTP(w, r)
		return w
	}
	if h := do("", "/me", "GET").Header().Get("WWW-Authenticate"); h != `Bearer realm="api"` {
		t.Fatalf("no token: RFC 6750 §3.1 says no error code: %q", h)
	}
	if h := do("Bearer abc.def.ghi", "/me", "GET").Header().Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) {
		t.Fatalf("bad token: %q", h)
	}
	if w := do("Basic Zm9vOmJhcg==", "/me", "GET"); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_request"`) {
		t.Fatalf("not bearer: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	w := do("Bearer "+f.token(t, nil), "/api/v1/items", "POST")
	if h := w.Header().Get("WWW-Authenticate"); w.Code != 403 || !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="write:employees"`) {
		t.Fatalf("insufficient scope: %d %q", w.Code, h)
	}
}

func TestReturnURLCookie(t *testing.T) {
	f := newFixture(t)
	g := f.guard(t, guard.Options{RuleSets: []guard.RuleSetConfig{
		{Name: "idp", Prefix: "/idp", LoginURL: "https://login.example.com/authorize?client_id=x", ReturnCookie: "next"},
		{LoginURL: "/login", Rules: []guard.PathRuleConfig{{Path: "/**", Allowed: guard.Allowed{Roles: []string{"admin"}}}}},
	}})
	get := func(target string, tls bool) *http.Response {
		r := httptest.NewRequest("GET", target, nil)
		if tls {
			r = httptest.NewRequest("GET", "https://site.example.com"+target, nil)
		}
		r.Header.Set("Accept", "text/html")
		w := httptest.NewRecorder()
		g.Middleware(http.NotFoundHandler()).ServeHTTP(w, r)
		return w.Result()
	}
	res := get("/reports/q3?year=2026&x=%2F%2Fevil.com", false)
	if res.StatusCode != 302 || res.Header.Get("Location") != "/login" {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get("Location"))
	}
	c := res.Cookies()[0]
	if c.Name != "returnUrl" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/" {
		t.Fatalf("cookie attributes %+v", c)
	}
	v, _ := url.QueryUnescape(c.Value)
	if v != "/reports/q3?year=2026&x=%2F%2Fevil.com" {
		t.Fatalf("return path %q", v)
	}
	if c := get("/reports", true).Cookies()[0]; !c.Secure {
		t.Fatal("under TLS the cookie is Secure")
	}
	// The login URL itself never redirects to itself.
	if res := get("/login", false); res.StatusCode != 401 || res.Header.Get("Location") != "" {
		t.Fatalf("login page redirect loop: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// An absolute IdP login URL; the section's own cookie name.
	res = get("/idp/x", false)
	if res.Header.Get("Location") != "https://login.example.com/authorize?client_id=x" || res.Cookies()[0].Name != "next" {
		t.Fatalf("idp section: %q %v", res.Header.Get("Location"), res.Cookies())
	}
	for _, c := range []struct{ p, q, want string }{
		{"//evil.com", "", "/evil.com"},
		{"/\\evil.com", "", "/"},
		{"/a/../../evil", "", "/evil"},
		{"/ok", "a=1\r\nSet-Cookie: x", "/ok"},
		{"/caf\u00e9", "", "/caf%C3%A9"},
	} {
		if got := guard.SafeReturnPath(c.p, c.q); got != c.want {
			t.Errorf("SafeReturnPath(%q, %q) = %q, want %q", c.p, c.q, got, c.want)
		}
	}
}

func TestRuleSetValidation(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name string
		rs   guard.RuleSetConfig
		key  string
	}{
		{"relative pattern", guard.RuleSetConfig{Rules: []guard.PathRuleConfig{{Path: "admin"}}}, "rules[0].path"},
		{"partial **", guard.RuleSetConfig{Rules: []guard.PathRuleConfig{{Path: "/a**"}}}, "rules[0].path"},
		{"bad glob", guard.RuleSetConfig{Rules: []guard.PathRuleConfig{{Path: "/[a"}}}, "rules[0].path"},
		{"login url scheme", guard.RuleSetConfig{LoginURL: "javascript:alert(1)"}, "login_url"},
		{"protocol-relative login url", guard.RuleSetConfig{LoginURL: "//evil.com/login"}, "login_url"},
		{"both login kinds", guard.RuleSetConfig{LoginURL: "/l", LoginPage: "x.html"}, "login_page"},
		{"missing page", guard.RuleSetConfig{ForbiddenPage: "/nonexistent/403.html"}, "forbidden_page"},
		{"unmatched", guard.RuleSetConfig{Unmatched: "maybe"}, "unmatched"},
		{"public with roles", guard.RuleSetConfig{Rules: []guard.PathRuleConfig{{Path: "/x", Public: true, DeniedRoles: []string{"a"}}}}, "rules[0].public"},
		{"bad method", guard.RuleSetConfig{Rules: []guard.PathRuleConfig{{Path: "/x", Methods: []string{"GE T"}}}}, "rules[0].methods"},
		{"cookie name", guard.RuleSetConfig{ReturnCookie: "a;b"}, "return_cookie"},
	} {
		_, err := guard.New(guard.Options{Auth: f.auth, RuleSets: []guard.RuleSetConfig{c.rs}})
		var ve *runtime.ValidationError
		if !errors.As(err, &ve) || !strings.HasSuffix(ve.Field, c.key) {
			t.Errorf("%s: want a validation error on %s, got %v", c.name, c.key, err)
		}
	}
}

// TestClaimPathsAcrossIssuers: a claimsmith token, a Hydra-shaped one (ext)
// and a Keycloak one (realm_access.roles) authorize by configuration alone.
func TestClaimPathsAcrossIssuers(t *testing.T) {
	rules := []guard.RuleSetConfig{{Rules: []guard.PathRuleConfig{{Path: "/admin/**", Allowed: guard.Allowed{Roles: []string{"admin"}, Permissions: []string{"users:write"}}}}}}
	cases := []struct {
		name   string
		paths  guard.ClaimPaths
		claims map[string]any
		typ    string
	}{
		{"claimsmith", guard.ClaimPaths{Roles: []string{ns + "roles"}, Permissions: []string{ns + "permissions"}},
			map[string]any{ns + "roles": []string{"admin"}, ns + "permissions": []string{"users:write"}}, ""},
		{"hydra ext", guard.ClaimPaths{Roles: []string{"ext." + ns + "roles"}, Permissions: []string{"ext.permissions"}},
			map[string]any{"ext": map[string]any{ns + "roles": []string{"admin"}, "permissions": []string{"users:write"}}}, "JWT"},
		{"keycloak", guard.ClaimPaths{Roles: []string{"realm_access.roles"}, Permissions: []string{"resource_access.api.roles"}},
			map[string]any{"realm_access": map[string]any{"roles": []string{"admin", "offline_access"}}, "resource_access": map[string]any{"api": map[string]any{"roles": []string{"users:write"}}}}, "JWT"},
		{"zitadel", guard.ClaimPaths{Roles: []string{"urn:zitadel:iam:org:project:roles"}, Permissions: []string{"urn:zitadel:iam:org:project:api:roles"}},
			map[string]any{"urn:zitadel:iam:org:project:roles": map[string]any{"admin": map[string]any{"123": "acme.zitadel.cloud"}},
				"urn:zitadel:iam:org:project:api:roles": map[string]any{"users:write": map[string]any{}}}, "JWT"},
		{"auth0 app_metadata", guard.ClaimPaths{Roles: []string{ns + "app_metadata.authorization.roles"}, Permissions: []string{"permissions"}},
			map[string]any{ns + "app_metadata": map[string]any{"authorization": map[string]any{"roles": []string{"admin"}}}, "permissions": []string{"users:write"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(ac *guard.AuthConfig, vc *guard.VerifierConfig) {
				ac.Paths = c.paths
				vc.Lenient = c.typ == "JWT"
			})
			g := f.guard(t, guard.Options{RuleSets: rules})
			tok := f.key.sign(t, f.is.claims(f.clock, c.claims), c.typ)
			r := httptest.NewRequest("GET", "/admin/users", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			g.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, r)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			// The same token read through paths that do not fit its shape is
			// refused: the configured paths are what authorizes.
			f2 := newFixture(t, func(ac *guard.AuthConfig, vc *guard.VerifierConfig) {
				ac.Paths = guard.ClaimPaths{Roles: []string{"roles"}, Permissions: []string{"permissions"}}
				vc.Lenient = true
			})
			g2 := f2.guard(t, guard.Options{RuleSets: rules})
			r.Header.Set("Authorization", "Bearer "+f2.key.sign(t, f2.is.claims(f2.clock, c.claims), c.typ))
			w = httptest.NewRecorder()
			g2.Middleware(http.NotFoundHandler()).ServeHTTP(w, r)
			if w.Code != 403 {
				t.Fatalf("mismatched paths on a %s token: status %d, want 403", c.name, w.Code)
			}
		})
	}
}

func TestRequireAuthAndHelpers(t *testing.T) {
	p := &guard.Principal{Subject: "u1", Roles: []string{"admin", "editor"}, Permissions: []string{"a:r"}, Groups: []string{"HR"}, Scopes: []string{"read", "write"}}
	ctx := guard.WithPrincipal(bg, p)
	checks := []struct {
		name string
		got  bool
		want bool
	}{
		{"HasRole any", guard.HasRole(ctx, "x", "admin"), true},
		{"HasRole none", guard.HasRole(ctx, "x"), false},
		{"HasAllRoles", guard.HasAllRoles(ctx, "admin", "editor"), true},
		{"HasAllRoles missing", guard.HasAllRoles(ctx, "admin", "x"), false},
		{"HasPermission", guard.HasPermission(ctx, "a:r"), true},
		{"HasAllPermissions", guard.HasAllPermissions(ctx, "a:r", "a:w"), false},
		{"InGroup", guard.InGroup(ctx, "HR"), true},
		{"InAllGroups", guard.InAllGroups(ctx, "HR", "IT"), false},
		{"HasScope", guard.HasScope(ctx, "write"), true},
		{"HasAllScopes", guard.HasAllScopes(ctx, "read", "write"), true},
		{"unauthenticated HasRole", guard.HasRole(bg, "admin"), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v", c.name, c.got)
		}
	}
	var ae *guard.AuthError
	if err := guard.RequireAuth(bg, guard.Requirement{}); !errors.As(err, &ae) || !errors.Is(err, runtime.ErrUnauthenticated) {
		t.Fatalf("no principal: %v", err)
	}
	var fe *guard.ForbiddenError
	for _, req := range []guard.Requirement{
		{Roles: []string{"x"}}, {Roles: []string{"admin", "x"}, AllRoles: true}, {Permissions: []string{"b"}},
		{Groups: []string{"IT"}}, {Scopes: []string{"read", "delete"}}, {Subject: "u2"},
	} {
		if err := guard.RequireAuth(ctx, req); !errors.As(err, &fe) || !errors.Is(err, runtime.ErrForbidden) {
			t.Errorf("%+v: want *ForbiddenError, got %v", req, err)
		}
	}
	if err := guard.RequireAuth(ctx, guard.Requirement{Roles: []string{"admin"}, Groups: []string{"HR"}, Scopes: []string{"read"}, Subject: "u1"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err    error
		status int
	}{
		{&guard.AuthError{Reason: guard.ErrNoToken}, 401},
		{&guard.ForbiddenError{Reason: guard.ErrNotAllowed}, 403},
		{&guard.ForbiddenError{Reason: guard.ErrInsufficientScope, Scopes: []string{"a"}}, 403},
		{runtime.ErrUnavailable, 503},
		{errors.New("boom"), 500},
	} {
		w := httptest.NewRecorder()
		guard.WriteError(w, "", c.err)
		if w.Code != c.status {
			t.Errorf("%v: %d, want %d", c.err, w.Code, c.status)
		}
	}
}
