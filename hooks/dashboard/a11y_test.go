package dashboard

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	controlRe = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idAttrRe  = regexp.MustCompile(`\bid="([^"]+)"`)
	idsRe     = regexp.MustCompile(`\bid="([^"]+)"`)
	describRe = regexp.MustCompile(`aria-describedby="([^"]+)"`)
)

// Every form control of every page has a label (or an aria-label), every
// id is unique, every aria-describedby names an element of the page, and
// a refused form marks its field invalid: what a screen reader and a
// keyboard user need.
func TestPagesAreLabelled(t *testing.T) {
	f := newFixture(t, withPlatform(t, prometheus.NewRegistry()))
	b := f.browser(t).signIn(f.all)
	pages := map[string]string{}
	for _, p := range []string{"signin", "groups", "groups/g-eng", "roles", "roles?app=portal-client", "roles/r-editor", "permissions/p-write",
		"applications", "applications/portal-client", "audit", "keys", "rules"} {
		pages[p] = b.get(Prefix + p).body
	}
	// A refused form, with its messages.
	pages["refused"] = b.post(Prefix+"groups/g-eng/members/add", with(b.form(Prefix+"groups/g-eng"), "members", "")).body
	if !strings.Contains(pages["refused"], `aria-invalid="true"`) {
		t.Error("a refused field is not marked aria-invalid")
	}
	for name, body := range pages {
		checkLabelled(t, name, body)
		if !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, `<main id="main"`) {
			t.Errorf("%s: no language or main landmark", name)
		}
	}
}

// checkLabelled: every form control of the page has a label (or an
// aria-label), every id is unique and every aria-describedby names an
// element of the page.
func checkLabelled(t *testing.T, name, body string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range idsRe.FindAllStringSubmatch(body, -1) {
		if seen[m[1]] {
			t.Errorf("%s: duplicate id %q", name, m[1])
		}
		seen[m[1]] = true
	}
	for _, c := range controlRe.FindAllString(body, -1) {
		if strings.Contains(c, `type="hidden"`) || strings.Contains(c, "aria-label=") {
			continue
		}
		id := idAttrRe.FindStringSubmatch(c)
		if id == nil || !strings.Contains(body, `<label for="`+id[1]+`"`) {
			t.Errorf("%s: control without a label: %s", name, c)
		}
	}
	for _, m := range describRe.FindAllStringSubmatch(body, -1) {
		for _, ref := range strings.Fields(m[1]) {
			if !seen[ref] {
				t.Errorf("%s: aria-describedby names %q, which is not on the page", name, ref)
			}
		}
	}
}
