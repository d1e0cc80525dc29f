package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A state-changing request without the session's CSRF token, or with a
// wrong one, is refused with 403 and changes nothing.
func TestCSRFRefused(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	v := b.form(Prefix + "groups")
	before := f.revision(t)
	for name, form := range map[string]url.Values{
		"missing": {"name": {"Forged"}},
		"wrong":   {"name": {"Forged"}, "csrf": {"not-the-token"}},
		"empty":   {"name": {"Forged"}, "csrf": {""}},
	} {
		p := b.post(Prefix+"groups", form)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "security token is missing or wrong") {
			t.Errorf("%s token: %d\n%s", name, p.status, p.body)
		}
	}
	// The right token from another site's page (the browser says so).
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+Prefix+"groups", strings.NewReader(with(v, "name", "Forged").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if p := b.do(req); p.status != http.StatusForbidden {
		t.Errorf("cross-origin post: %d", p.status)
	}
	// Sign-out is a state change too.
	if p := b.post(Prefix+"signout", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("sign-out without token: %d", p.status)
	}
	if got := f.revision(t); got != before {
		t.Fatalf("refused requests changed the store: revision %d → %d", before, got)
	}
	// With the token it works.
	if p := b.post(Prefix+"groups", with(v, "name", "Real")); p.status != http.StatusSeeOther {
		t.Fatalf("create with token: %d\n%s", p.status, p.body)
	}
	if f.revision(t) != before+1 {
		t.Fatal("create did not commit")
	}
}

// A read-only key sees no write control, and the server refuses its
// writes anyway.
func TestReadOnlyKeyCannotWrite(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.read)
	for _, path := range []string{Prefix + "groups", Prefix + "groups/g-eng"} {
		p := b.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", path, p.status)
		}
		if strings.Contains(p.body, `method="post" action="/admin/groups`) {
			t.Errorf("%s shows write forms to a read-only key", path)
		}
		if !strings.Contains(p.body, "read-only") {
			t.Errorf("%s does not say read-only", path)
		}
	}
	v := b.form(Prefix + "groups/g-eng") // the sign-out form's token
	before := f.revision(t)
	for path, form := range map[string]url.Values{
		Prefix + "groups":                   with(v, "name", "X"),
		Prefix + "groups/g-eng/rename":      with(v, "name", "X", "rev", "1"),
		Prefix + "groups/g-eng/delete":      with(v, "rev", "1", "cascade", "on"),
		Prefix + "groups/g-eng/members/add": with(v, "rev", "1", "members", "auth0|mallory"),
	} {
		if p := b.post(path, form); p.status != http.StatusForbidden || !strings.Contains(p.body, "lacks the") {
			t.Errorf("read-only POST %s: %d\n%s", path, p.status, p.body)
		}
	}
	if f.revision(t) != before {
		t.Fatal("a read-only key changed the store")
	}
}
