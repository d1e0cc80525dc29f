package dashboard

import (
	"os"
	"strings"
	"testing"
)

// TestMyPagesAreLabelled applies TestPagesAreLabelled's rules to the user
// view, try a login and import/export, each with results and refusals.
func TestMyPagesAreLabelled(t *testing.T) {
	f := newFixture(t, withPipeline(t))
	b := f.browser(t).signIn(f.all)
	sample, err := os.ReadFile("../../samples/data/claimsmith-full.json")
	if err != nil {
		t.Fatal(err)
	}
	tv := b.form(Prefix + "try-login")
	iv := b.form(Prefix + "import")
	pages := map[string]string{
		"users":          b.get(Prefix + "users").body,
		"users result":   b.get(Prefix + "users?user=auth0%7Calice&client=portal-client").body,
		"users refused":  b.get(Prefix + "users?user=auth0%7Calice&client=").body,
		"try-login":      b.get(Prefix + "try-login").body,
		"try-login ran":  b.post(Prefix+"try-login", with(tv, "event", readSample(DefaultSample))).body,
		"try-login bad":  b.post(Prefix+"try-login", with(tv, "event", "{")).body,
		"import":         b.get(Prefix + "import").body,
		"import refused": b.post(Prefix+"import/preview", with(iv, "document", "")).body,
		"import preview": b.postMultipart(Prefix+"import/preview", map[string]string{"csrf": iv.Get("csrf")}, sample).body,
	}
	for name, body := range pages {
		checkLabelled(t, name, body)
		if strings.Contains(name, "refused") || strings.Contains(name, "bad") {
			if !strings.Contains(body, `aria-invalid="true"`) {
				t.Errorf("%s: the refused field is not marked aria-invalid", name)
			}
		}
	}
}
