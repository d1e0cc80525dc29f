package dashboard

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
)

// TestUserView: the user view shows the effective role with its chain
// through the nested group, the stored profile escaped, and refuses a
// user without a client with a message under the field.
func TestUserView(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.PatchProfile(context.Background(), "auth0|alice", map[string]any{"plan": "<b>gold</b>"}, nil); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t).signIn(f.read)
	p := b.get(Prefix + "users?user=auth0%7Calice&client=portal-client")
	if p.status != 200 {
		t.Fatalf("user view: %d\n%s", p.status, p.body)
	}
	for _, want := range []string{
		"member of Platform → nested in Engineering → role editor",
		"member of Platform → nested in Engineering → role editor → permission write:docs",
		"&lt;b&gt;gold&lt;/b&gt;",
		`<option value="portal-client" selected>`,
	} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("user view lacks %q:\n%s", want, p.body)
		}
	}
	if inlineScript.MatchString(p.body) || inlineHandler.MatchString(p.body) {
		t.Fatal("inline script in the user view")
	}
	// The form submitted without an application is refused under the field.
	p = b.get(Prefix + "users?user=auth0%7Calice&client=")
	if p.status != 400 || !strings.Contains(p.body, `id="u-client-err"`) || !strings.Contains(p.body, "choose the application") {
		t.Fatalf("user without client: %d\n%s", p.status, p.body)
	}
	if p := b.get(Prefix + "users"); p.status != 200 || !strings.Contains(p.body, `id="u-user"`) {
		t.Fatalf("empty user view: %d", p.status)
	}
}

// BenchmarkUserViewPage: the whole user view page (explain, chains,
// template) for the benchmark user at 10,000 groups and 100,000 users; the
// issue's bound is 200 ms server time.
func BenchmarkUserViewPage(b *testing.B) {
	doc := authzgen.Generate(authzgen.BenchSpec(100000))
	doc.Claimsmith = &authz.Section{Applications: []authz.Application{{ClientID: authzgen.GenClientID(0)}}}
	f := newFixture(b, fixtureOptions{doc: doc})
	br := f.browser(b).signIn(f.read)
	q := authzgen.BenchQuery()
	path := Prefix + "users?user=" + pathEscape(q.UserID) + "&client=" + q.ClientID + "&audience=" + pathEscape(q.Audience) +
		"&connection=" + q.Connection + "&groups=" + pathEscape(strings.Join(q.IdPGroups, ","))
	if p := br.get(path); p.status != 200 || !strings.Contains(p.body, "effective group(s)") {
		b.Fatalf("%d %s", p.status, p.body[:min(len(p.body), 2000)])
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		br.get(path)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N)/1000, "ms/page")
}

// User ids link to the user view: a group's members (for the application
// of the group's roles), a role's users, and the user ids of audit
// records. A link naming only the user explains the login at the one
// application there is, or asks which one when there are several.
func TestUserLinks(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	want := `href="/admin/users?client=portal-client&amp;user=auth0%7Calice"`
	if p := b.get(Prefix + "groups/g-plat"); !strings.Contains(p.body, want) {
		t.Fatalf("group member not linked (%s):\n%s", want, p.body)
	}
	if res := b.post(Prefix+"roles/r-admin/users/add", with(b.form(Prefix+"roles/r-admin"), "users", "auth0|bob")); res.status != 303 {
		t.Fatalf("assign: %d\n%s", res.status, res.body)
	}
	if p := b.get(Prefix + "roles/r-admin"); !strings.Contains(p.body, `href="/admin/users?client=portal-client&amp;user=auth0%7Cbob"`) {
		t.Fatalf("role user not linked:\n%s", p.body)
	}
	if p := b.get(Prefix + "audit?action=role.users.add"); !strings.Contains(p.body, `<a href="/admin/users?user=auth0%7Cbob">auth0|bob</a>`) {
		t.Fatalf("audit record's user not linked:\n%s", p.body)
	}
	// A link with a bad field is still refused, naming it.
	long := strings.Repeat("a", 2000)
	if p := b.get(Prefix + "users?user=auth0%7Calice&audience=" + long); p.status != 400 || !strings.Contains(p.body, "audience: is 2000 bytes long") {
		t.Fatalf("user-only link with a too-long audience: %d\n%s", p.status, p.body)
	}
	// One application: a link with the user only explains at once.
	if p := b.get(Prefix + "users?user=auth0%7Calice"); p.status != 200 || !strings.Contains(p.body, "role editor") {
		t.Fatalf("user-only link: %d\n%s", p.status, p.body)
	}

	two := sampleDoc()
	two.Claimsmith.Applications = append(two.Claimsmith.Applications, authz.Application{ClientID: "other-client"})
	f2 := newFixture(t, fixtureOptions{doc: two})
	p := f2.browser(t).signIn(f2.read).get(Prefix + "users?user=auth0%7Calice")
	if p.status != 200 || !strings.Contains(p.body, `id="choose-client"`) || strings.Contains(p.body, "field-error") ||
		!strings.Contains(p.body, `value="auth0|alice"`) || strings.Contains(p.body, "effective group(s)") ||
		!strings.Contains(p.body, `<select id="u-client" name="client" autofocus`) {
		t.Fatalf("user-only link with two applications: %d\n%s", p.status, p.body)
	}
}
