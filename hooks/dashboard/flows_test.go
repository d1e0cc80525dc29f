package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// The groups workflow through the forms: create, nest (with the cycle it
// makes shown), bulk add members, give a role, map an IdP group, rename,
// delete with the nesting rule; every write audited under the key's name.
func TestGroupWorkflow(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	res := b.post(Prefix+"groups", with(b.form(Prefix+"groups"), "name", "SRE", "description", "on call"))
	if res.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", res.status, res.body)
	}
	loc := res.header.Get("Location")
	id := strings.TrimPrefix(loc, Prefix+"groups/")
	page := b.get(loc)
	if !strings.Contains(page.body, `Group &#34;SRE&#34; created.`) {
		t.Fatalf("no notice after create:\n%s", page.body)
	}
	step := func(action string, kv ...string) {
		t.Helper()
		res := b.post(Prefix+"groups/"+id+"/"+action, with(b.form(loc), kv...))
		if res.status != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", action, res.status, res.body)
		}
	}
	step("nested/add", "nested", "Engineering")                            // by exact name: SRE nests Engineering (which nests Platform)
	step("members/add", "members", "auth0|x1\nauth0|x2,auth0|x3 auth0|x1") // pasted, repeated id kept once
	step("roles/add", "roles", "r-admin")
	step("mappings/add", "groupName", "CORP\\sre", "connectionName", "corp-ad")
	// Platform nests SRE: SRE → Engineering → Platform → SRE is a loop.
	res = b.post(Prefix+"groups/g-plat/nested/add", with(b.form(Prefix+"groups/g-plat"), "nested", id))
	if res.status != http.StatusSeeOther {
		t.Fatalf("nest into platform: %d\n%s", res.status, res.body)
	}
	page = b.get(loc)
	for _, want := range []string{"Nesting cycle:</strong> SRE → Engineering → Platform → SRE", "(cycle)", "auth0|x3", "CORP\\sre", ">admin</a>",
		"Also through the groups it is nested in"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("group page lacks %q", want)
		}
	}
	m, _ := f.svc.Model(context.Background())
	g := findGroup(m.Document(), id)
	if !slices.Equal(g.Members, []string{"auth0|x1", "auth0|x2", "auth0|x3"}) || !slices.Equal(g.Nested, []string{"g-eng"}) ||
		!slices.Equal(g.Roles, []string{"r-admin"}) || len(g.Mappings) != 1 {
		t.Fatalf("group after the forms: %+v", g)
	}
	// Delete refuses while Platform nests it, then cascades when asked.
	res = b.post(Prefix+"groups/"+id+"/delete", b.form(loc))
	if res.status != http.StatusConflict || !strings.Contains(res.body, "g-plat") {
		t.Fatalf("delete of a nested group: %d\n%s", res.status, res.body)
	}
	step("delete", "cascade", "on")
	m, _ = f.svc.Model(context.Background())
	if findGroup(m.Document(), id) != nil || slices.Contains(findGroup(m.Document(), "g-plat").Nested, id) {
		t.Fatal("cascading delete left the group or its reference")
	}
	// Audited as the API audits: same actions, the key's name, request ids
	// that tell a dashboard write.
	p, err := f.svc.AuditLog(context.Background(), radmin.AuditQuery{KeyName: "root", PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range p.Records {
		actions = append(actions, r.Action)
		if !strings.HasPrefix(r.RequestID, "dash-") {
			t.Errorf("record %d request id %q", r.Seq, r.RequestID)
		}
	}
	want := []string{"group.delete", "group.nested.add", "group.mappings.add", "group.roles.add", "group.members.add", "group.nested.add", "group.create"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
	// The audit page shows the member add as a diff of ids.
	page = b.get(Prefix + "audit?action=group.members.add&actor=root")
	if !strings.Contains(page.body, `<ins>+ <a href="/admin/users?user=auth0%7Cx2">auth0|x2</a></ins>`) || strings.Contains(page.body, "group.create</code>") {
		t.Fatalf("audit page:\n%s", page.body)
	}
	// Time filter: nothing before the writes.
	page = b.get(Prefix + "audit?to=2000-01-01T00:00")
	if !strings.Contains(page.body, "0 record(s)") {
		t.Fatalf("time filter:\n%s", page.body)
	}
	if page = b.get(Prefix + "audit?from=nope"); page.status != http.StatusBadRequest || !strings.Contains(page.body, "not a time") {
		t.Fatalf("bad time: %d", page.status)
	}
}

// Search answers while typing: the fragment endpoint returns only the
// matching rows, and a signed-out fetch gets 401 rather than a redirect.
func TestSearchFragment(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.read)
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+Prefix+"groups?q=plat&fragment=1", nil)
	req.Header.Set("X-Requested-With", "fetch")
	p := b.do(req)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Platform") || strings.Contains(p.body, "Sales") ||
		strings.Contains(p.body, "<html") || !strings.Contains(p.body, `data-count="1 group(s)"`) {
		t.Fatalf("fragment: %d\n%s", p.status, p.body)
	}
	// Members of a group filter the same way.
	p = b.get(Prefix + "groups/g-plat?q=ALI&fragment=1")
	if !strings.Contains(p.body, "auth0|alice") || strings.Contains(p.body, "<html") {
		t.Fatalf("member fragment:\n%s", p.body)
	}
	// Paging at 10k groups is covered by the benchmark; here: page 2 of 3.
	for i := range 120 {
		if _, err := f.svc.Apply(context.Background(), radmin.Caller{KeyName: "seed"}, entityChange("group.create", "group", "gen-"+itoa(i),
			createGroup("gen-"+itoa(i), "Generated "+itoa(i))), radmin.IfMatch{}); err != nil {
			t.Fatal(err)
		}
	}
	p = b.get(Prefix + "groups?page=2")
	if !strings.Contains(p.body, "Page 2 of 3") || !strings.Contains(p.body, `href="/admin/groups?page=3"`) || !strings.Contains(p.body, `href="/admin/groups"`) {
		t.Fatalf("pager:\n%s", p.body)
	}
	if p = b.get(Prefix + "groups?page=0"); p.status != http.StatusBadRequest {
		t.Fatalf("page=0: %d", p.status)
	}
	anon := f.browser(t)
	req, _ = http.NewRequest(http.MethodGet, f.srv.URL+Prefix+"groups?q=plat&fragment=1", nil)
	req.Header.Set("X-Requested-With", "fetch")
	if p := anon.do(req); p.status != http.StatusUnauthorized {
		t.Fatalf("signed-out fetch: %d", p.status)
	}
}

// The one-time development sign-in works once, before its expiry, only
// by POST; its session has every scope.
func TestOneTimeSignIn(t *testing.T) {
	f := newFixture(t)
	path := f.d.EnableOneTimeSignIn(10 * time.Minute)
	tok := strings.TrimPrefix(path, Prefix+"signin/once?token=")
	b := f.browser(t)
	// Opening the link (a GET, as a link preview would) spends nothing.
	if p := b.get(path); p.status != http.StatusOK || !strings.Contains(p.body, "Sign in once") {
		t.Fatalf("link page: %d", p.status)
	}
	if p := b.post(Prefix+"signin/once", url.Values{"token": {"wrong"}}); p.status != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", p.status)
	}
	if p := b.post(Prefix+"signin/once", url.Values{"token": {tok}}); p.status != http.StatusSeeOther {
		t.Fatalf("one-time sign-in: %d\n%s", p.status, p.body)
	}
	if p := b.get(Prefix + "groups"); p.status != http.StatusOK || !strings.Contains(p.body, "one-time dev sign-in") {
		t.Fatalf("after one-time sign-in: %d", p.status)
	}
	if p := f.browser(t).post(Prefix+"signin/once", url.Values{"token": {tok}}); p.status != http.StatusUnauthorized {
		t.Fatalf("second use: %d", p.status)
	}
	// Expiry.
	g := newFixture(t)
	path = g.d.EnableOneTimeSignIn(time.Minute)
	g.clock.Add(time.Minute)
	if p := g.browser(t).post(Prefix+"signin/once", url.Values{"token": {strings.TrimPrefix(path, Prefix+"signin/once?token=")}}); p.status != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", p.status)
	}
	// Never enabled: nothing signs in.
	if p := newFixture(t).browser(t).post(Prefix+"signin/once", url.Values{"token": {""}}); p.status != http.StatusUnauthorized {
		t.Fatalf("disabled: %d", p.status)
	}
}

func TestRotateSigningKey(t *testing.T) {
	f := newFixture(t, withPlatform(t, prometheus.NewRegistry()))
	b := f.browser(t).signIn(f.all)
	res := b.post(Prefix+"keys/rotate", with(b.form(Prefix+"keys"), "alg", "EdDSA"))
	if res.status != http.StatusSeeOther {
		t.Fatalf("rotate: %d\n%s", res.status, res.body)
	}
	p := b.get(Prefix + "keys")
	if !strings.Contains(p.body, "badge next") || !strings.Contains(p.body, "EdDSA") || !strings.Contains(p.body, "New key") ||
		!strings.Contains(p.body, `href="/admin/audit?action=keys.rotate"`) {
		t.Fatalf("keys after rotation:\n%s", p.body)
	}
	// Nothing private is rendered: only kids, algorithms and times.
	if strings.Contains(p.body, "PRIVATE") || strings.Contains(p.body, `"d":`) {
		t.Fatal("key material rendered")
	}
	// The rotation is audited as the signed-in key and shows on the audit
	// page, filtered by its action, with the new and the retiring kid.
	infos := f.d.cfg.Signing.Infos()
	oldKid, newKid := infos[0].ID, infos[len(infos)-1].ID
	page, err := f.svc.AuditLog(context.Background(), radmin.AuditQuery{PerPage: 5, Action: radmin.ActionKeysRotate})
	if err != nil || page.Total != 1 || page.Records[0].KeyName != "root" || page.Records[0].EntityID != newKid {
		t.Fatalf("audit of the rotation: %+v %v", page, err)
	}
	a := b.get(Prefix + "audit?action=keys.rotate")
	for _, want := range []string{"<code>keys.rotate</code>", newKid, oldKid, `href="/admin/keys"`, "retires", "by <strong>root</strong>"} {
		if !strings.Contains(a.body, want) {
			t.Fatalf("audit page lacks %q:\n%s", want, a.body)
		}
	}
	if strings.Contains(a.body, "revision 0 → 0") {
		t.Fatal("a key rotation shows a model revision")
	}
	// A read-only key can neither see the control nor rotate.
	r := f.browser(t).signIn(f.read)
	v := r.form(Prefix + "keys")
	n := len(f.d.cfg.Signing.Infos())
	if res := r.post(Prefix+"keys/rotate", v); res.status != http.StatusForbidden || len(f.d.cfg.Signing.Infos()) != n {
		t.Fatalf("read-only rotate: %d", res.status)
	}
}

func TestBulkRemoveMembers(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	if res := b.post(Prefix+"groups/g-sales/members/add", with(b.form(Prefix+"groups/g-sales"), "members", "u1 u2 u3 u4")); res.status != http.StatusSeeOther {
		t.Fatalf("add: %d", res.status)
	}
	if res := b.post(Prefix+"groups/g-sales/members/remove", with(b.form(Prefix+"groups/g-sales"), "members", "u2\nu4\nnot-a-member")); res.status != http.StatusSeeOther {
		t.Fatalf("remove: %d\n%s", res.status, res.body)
	}
	m, _ := f.svc.Model(context.Background())
	if g := findGroup(m.Document(), "g-sales"); !slices.Equal(g.Members, []string{"u1", "u3"}) {
		t.Fatalf("members %v", g.Members)
	}
}

// A group name with a space can be pasted to nest it (it was split into
// words and refused); ids separated by spaces still work.
func TestNestByNameWithSpaces(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	var ids []string
	for _, name := range []string{"QA Leads", "On Call"} {
		res := b.post(Prefix+"groups", with(b.form(Prefix+"groups"), "name", name))
		if res.status != http.StatusSeeOther {
			t.Fatalf("create %q: %d\n%s", name, res.status, res.body)
		}
		ids = append(ids, strings.TrimPrefix(res.header.Get("Location"), Prefix+"groups/"))
	}
	res := b.post(Prefix+"groups/g-eng/nested/add", with(b.form(Prefix+"groups/g-eng"), "nested", "qa leads\n"+ids[1]+" g-plat"))
	if res.status != http.StatusSeeOther {
		t.Fatalf("nest by name with a space: %d\n%s", res.status, res.body)
	}
	m, _ := f.svc.Model(context.Background())
	g := findGroup(m.Document(), "g-eng")
	for _, want := range []string{ids[0], ids[1], "g-plat"} {
		if !slices.Contains(g.Nested, want) {
			t.Errorf("g-eng nests %v, want %s in it", g.Nested, want)
		}
	}
}
