package dashboard

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSignInAndOut(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	// Signed out: a page sends to the sign-in form, keeping the target.
	p := b.get(Prefix + "groups")
	if p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Location"), "/admin/signin?next=%2Fadmin%2Fgroups") {
		t.Fatalf("signed out: %d %s", p.status, p.header.Get("Location"))
	}
	b.signIn(f.all)
	var sess *http.Cookie
	for _, c := range b.jar.Cookies(mustURL(t, f.srv.URL+Prefix)) {
		if c.Name == CookieName {
			sess = c
		}
	}
	if sess == nil {
		t.Fatal("no session cookie")
	}
	p = b.get(Prefix + "groups")
	if p.status != http.StatusOK || !strings.Contains(p.body, "Engineering") || !strings.Contains(p.body, "Signed in as <strong>root</strong>") {
		t.Fatalf("groups page: %d\n%s", p.status, p.body)
	}
	// The key's secret is never on a page.
	if strings.Contains(p.body, f.all) {
		t.Fatal("the admin key is rendered")
	}
	out := b.post(Prefix+"signout", url.Values{"csrf": {field(t, p.body, csrfRe)}})
	if out.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d %s", out.status, out.body)
	}
	// The old cookie value no longer works even if replayed.
	replay := f.browser(t)
	replay.jar.SetCookies(mustURL(t, f.srv.URL+Prefix), []*http.Cookie{{Name: CookieName, Value: sess.Value, Path: Prefix}})
	if p := replay.get(Prefix + "groups"); p.status != http.StatusSeeOther {
		t.Fatalf("replayed session after sign-out: %d", p.status)
	}
}

func TestSignInCookieAttributes(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	p := b.get(Prefix + "signin")
	res := b.post(Prefix+"signin", url.Values{"csrf": {field(t, p.body, csrfRe)}, "key": {f.all}})
	sc := res.header.Values("Set-Cookie")
	var got string
	for _, c := range sc {
		if strings.HasPrefix(c, CookieName+"=") {
			got = c
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/admin/", "Max-Age="} {
		if !strings.Contains(got, want) {
			t.Errorf("session cookie %q lacks %s", got, want)
		}
	}
	if strings.Contains(got, "Secure") {
		t.Errorf("plain-HTTP cookie marked Secure (the browser would drop it): %q", got)
	}
}

func TestSignInRefusesBadKey(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	p := b.get(Prefix + "signin")
	tok := field(t, p.body, csrfRe)
	res := b.post(Prefix+"signin", url.Values{"csrf": {tok}, "key": {"csk_nope"}})
	if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "That admin key is not valid.") {
		t.Fatalf("bad key: %d\n%s", res.status, res.body)
	}
	res = b.post(Prefix+"signin", url.Values{"csrf": {field(t, res.body, csrfRe)}, "key": {""}})
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "Enter an admin key") {
		t.Fatalf("empty key: %d\n%s", res.status, res.body)
	}
	// Without the sign-in form's token (a forged sign-in): refused.
	res = b.post(Prefix+"signin", url.Values{"key": {f.all}})
	if res.status != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF token: %d", res.status)
	}
}

// A session id planted before sign-in (session fixation) is not adopted:
// sign-in issues a new id, and the planted one stays worthless.
func TestSessionFixation(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	planted := "attacker-chosen-session-id-0123456789"
	u := mustURL(t, f.srv.URL+Prefix)
	b.jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: planted, Path: Prefix}})
	if p := b.get(Prefix + "groups"); p.status != http.StatusSeeOther {
		t.Fatalf("planted cookie accepted before sign-in: %d", p.status)
	}
	b.signIn(f.all)
	var now string
	for _, c := range b.jar.Cookies(u) {
		if c.Name == CookieName {
			now = c.Value
		}
	}
	if now == "" || now == planted {
		t.Fatalf("sign-in kept the planted session id %q", now)
	}
	attacker := f.browser(t)
	attacker.jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: planted, Path: Prefix}})
	if p := attacker.get(Prefix + "groups"); p.status != http.StatusSeeOther {
		t.Fatalf("the planted id works after the victim signed in: %d", p.status)
	}
	// A second sign-in in the same browser gets yet another id.
	b.signIn(f.all)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == CookieName && c.Value == now {
			t.Fatal("second sign-in reused the session id")
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *Config) { c.IdleTimeout = 10 * time.Minute; c.MaxAge = time.Hour }})
	b := f.browser(t).signIn(f.all)
	// Used every 9 minutes, the session lives until its maximum age.
	for range 6 {
		f.clock.Add(9 * time.Minute)
		if p := b.get(Prefix + "groups"); p.status != http.StatusOK {
			t.Fatalf("active session ended early: %d", p.status)
		}
	}
	f.clock.Add(7 * time.Minute) // 61 minutes old
	if p := b.get(Prefix + "groups"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), Prefix+"signin") {
		t.Fatalf("session past its maximum age: %d %s", p.status, p.header.Get("Location"))
	}
	// Idle expiry.
	b = f.browser(t).signIn(f.all)
	f.clock.Add(10 * time.Minute)
	if p := b.get(Prefix + "groups"); p.status != http.StatusSeeOther {
		t.Fatalf("idle session still valid: %d", p.status)
	}
	// A script's fetch gets 401, not a redirect.
	b = f.browser(t).signIn(f.all)
	f.clock.Add(11 * time.Minute)
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+Prefix+"groups?q=x&fragment=1", nil)
	req.Header.Set("X-Requested-With", "fetch")
	if p := b.do(req); p.status != http.StatusUnauthorized {
		t.Fatalf("expired fetch: %d", p.status)
	}
}

func TestRevokedKeyEndsSession(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.read)
	if err := f.keys.Revoke(t.Context(), "reader"); err != nil {
		t.Fatal(err)
	}
	if p := b.get(Prefix + "groups"); p.status != http.StatusSeeOther {
		t.Fatalf("revoked key's session still works: %d", p.status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, path := range []string{Prefix + "signin", Prefix + "static/app.js", Prefix + "nope"} {
		p := b.get(path)
		csp := p.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline or eval: %q", path, csp)
		}
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
			if got := p.header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
	}
	// No page carries an inline script or inline event handler.
	b.signIn(f.all)
	for _, path := range []string{Prefix + "signin", Prefix + "groups", Prefix + "groups/g-eng"} {
		body := b.get(path).body
		if inlineScript.MatchString(body) || inlineHandler.MatchString(body) {
			t.Errorf("%s has inline script or handler", path)
		}
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Under TLS the session cookie is Secure; the key typed at sign-in is
// never rendered back, even when refused.
func TestSecureCookieUnderTLSAndKeyNotEchoed(t *testing.T) {
	f := newFixture(t)
	tls := httptest.NewTLSServer(f.d)
	t.Cleanup(tls.Close)
	jar, _ := cookiejar.New(nil)
	c := tls.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	b := &browser{t: t, f: &fixture{srv: tls}, c: c, jar: jar}
	p := b.get(Prefix + "signin")
	res := b.post(Prefix+"signin", url.Values{"csrf": {field(t, p.body, csrfRe)}, "key": {f.all + "x"}})
	if res.status != http.StatusUnauthorized || strings.Contains(res.body, f.all) {
		t.Fatalf("refused sign-in: %d, key echoed: %v", res.status, strings.Contains(res.body, f.all))
	}
	res = b.post(Prefix+"signin", url.Values{"csrf": {field(t, res.body, csrfRe)}, "key": {f.all}})
	var got string
	for _, sc := range res.header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, CookieName+"=") {
			got = sc
		}
	}
	if !strings.Contains(got, "; Secure") || !strings.Contains(got, "HttpOnly") {
		t.Fatalf("TLS session cookie %q", got)
	}
}
