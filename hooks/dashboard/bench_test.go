package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
)

// BenchmarkGroupsPage renders the groups pages at the scale: the
// generated model of 10,000 groups (nested up to 5 levels), 1,000 roles and
// 100,000 users each in 10 groups, in a real file store. It measures the
// server's time (the handler, session and key check included) without the
// network: the acceptance bound is 200 ms per page.
func BenchmarkGroupsPage(b *testing.B) {
	f := newFixture(b, fixtureOptions{doc: authzgen.Generate(authzgen.BenchSpec(100000))})
	br := f.browser(b).signIn(f.all)
	var cookie string
	for _, c := range br.jar.Cookies(mustURL(b, f.srv.URL+Prefix)) {
		if c.Name == CookieName {
			cookie = c.Value
		}
	}
	// The group with the most members.
	m, err := f.svc.Model(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	big, most := "", -1
	for _, g := range m.Document().Groups {
		if len(g.Members) > most {
			big, most = g.ID, len(g.Members)
		}
	}
	b.Logf("model: %d groups, largest %s with %d members", len(m.Document().Groups), big, most)
	for _, bc := range []struct{ name, path string }{
		{"list", "groups"},
		{"list-page-150", "groups?page=150"},
		{"search-typing", "groups?q=Group+0999&fragment=1"},
		{"search-no-hit", "groups?q=zzz&fragment=1"},
		{"group-largest", "groups/" + big},
		{"group-nested", "groups/group-00000"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, Prefix+bc.path, nil)
				req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
				rec := httptest.NewRecorder()
				f.d.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Group") {
					b.Fatalf("%s: %d", bc.path, rec.Code)
				}
			}
		})
	}
}
