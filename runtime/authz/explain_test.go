package authz_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
)

// checkExplain asserts that Explain's effective lists are Resolve's answer
// and that every reason it gives holds in the document.
func checkExplain(t *testing.T, m *authz.Model, q authz.PolicyQuery) {
	t.Helper()
	e := m.Explain(q)
	want, got := m.Resolve(q), e.Policy()
	if !slices.Equal(want.Groups, got.Groups) || !slices.Equal(want.Roles, got.Roles) || !slices.Equal(want.Permissions, got.Permissions) {
		if doc := m.Document(); len(doc.Groups) < 50 {
			b, _ := json.Marshal(doc)
			t.Logf("document: %s", b)
		}
		t.Fatalf("query %+v:\nresolve %v | %v | %v\nexplain %v | %v | %v", q,
			want.Groups, want.Roles, want.Permissions, got.Groups, got.Roles, got.Permissions)
	}
	doc := m.Document()
	group := func(id string) *authz.Group {
		for i := range doc.Groups {
			if doc.Groups[i].ID == id {
				return &doc.Groups[i]
			}
		}
		t.Fatalf("why names unknown group %q", id)
		return nil
	}
	for _, g := range e.Groups {
		if len(g.Why) == 0 {
			t.Fatalf("group %s without a reason", g.ID)
		}
		for _, w := range g.Why {
			if w.Path[len(w.Path)-1].ID != g.ID {
				t.Fatalf("group %s: path %v does not end at it", g.ID, w.Path)
			}
			for k := 1; k < len(w.Path); k++ {
				if !slices.Contains(group(w.Path[k].ID).Nested, w.Path[k-1].ID) {
					t.Fatalf("group %s: %s does not nest %s", g.ID, w.Path[k].ID, w.Path[k-1].ID)
				}
			}
			first := group(w.Path[0].ID)
			switch w.Via {
			case authz.ViaMember:
				if !slices.Contains(first.Members, q.UserID) {
					t.Fatalf("group %s: user is not a member of %s", g.ID, first.ID)
				}
			case authz.ViaMapping:
				mp := w.Mapping
				if mp.Connection != q.Connection || !slices.ContainsFunc(first.Mappings, func(x authz.Mapping) bool {
					return x.ID == mp.ID && x.ConnectionName == mp.Connection && x.GroupName == mp.GroupName
				}) {
					t.Fatalf("group %s: mapping %+v is not on %s for connection %q", g.ID, mp, first.ID, q.Connection)
				}
				if mp.From == authz.FromIdP && !slices.Contains(q.IdPGroups, mp.GroupName) ||
					mp.From == authz.FromGroup && (mp.FromGroup.Name != mp.GroupName || !slices.Contains(group(mp.FromGroup.ID).Members, q.UserID)) {
					t.Fatalf("group %s: mapping label %+v not reported for this login", g.ID, mp)
				}
			default:
				t.Fatalf("group %s: via %q", g.ID, w.Via)
			}
		}
		if c := e.GroupChain(slices.IndexFunc(e.Groups, func(x authz.GroupGrant) bool { return x.ID == g.ID })); c[len(c)-1].ID != g.ID {
			t.Fatalf("group %s: chain %v ends elsewhere", g.ID, c)
		}
	}
	for i, r := range e.Roles {
		for _, via := range r.Groups {
			if !slices.Contains(group(via.ID).Roles, r.ID) {
				t.Fatalf("role %s: group %s does not carry it", r.ID, via.ID)
			}
		}
		if r.Direct != slices.ContainsFunc(doc.Roles, func(x authz.Role) bool { return x.ID == r.ID && slices.Contains(x.Users, q.UserID) }) {
			t.Fatalf("role %s: direct=%v is wrong", r.ID, r.Direct)
		}
		if !r.Direct && len(r.Groups) == 0 {
			t.Fatalf("role %s without a reason", r.ID)
		}
		if c := e.RoleChain(i); c[len(c)-1].ID != r.ID {
			t.Fatalf("role %s: chain %v", r.ID, c)
		}
	}
	for i, p := range e.Permissions {
		if len(p.Roles) == 0 {
			t.Fatalf("permission %s without a role", p.ID)
		}
		for _, via := range p.Roles {
			if !slices.ContainsFunc(doc.Roles, func(x authz.Role) bool { return x.ID == via.ID && slices.Contains(x.Permissions, p.ID) }) {
				t.Fatalf("permission %s: role %s does not grant it", p.ID, via.ID)
			}
		}
		if c := e.PermissionChain(i); c[len(c)-1].Kind != "permission" || c[len(c)-2].Kind != "role" && c[len(c)-2].Kind != "direct-role" {
			t.Fatalf("permission %s: chain %v", p.ID, c)
		}
	}
}

// TestExplainAgreesWithResolveGenerated: over the generated model (the
// benchmark's structure at 2,000 users), Explain's effective lists are
// Resolve's for every user, client, audience and mapped login tried.
func TestExplainAgreesWithResolveGenerated(t *testing.T) {
	spec := authzgen.BenchSpec(2000)
	spec.Groups, spec.Roles, spec.Permissions = 2000, 300, 900
	m := authz.NewModel(authzgen.Generate(spec), 7)
	rng := rand.New(rand.NewPCG(1, 2))
	checkExplain(t, m, authzgen.BenchQuery())
	for i := 0; i < 300; i++ {
		q := authz.PolicyQuery{UserID: authzgen.GenUserID(rng.IntN(spec.Users + 10)), ClientID: authzgen.GenClientID(rng.IntN(spec.Clients + 1))}
		if rng.IntN(2) == 0 {
			q.Audience = authzgen.BenchAudience
		}
		if rng.IntN(2) == 0 {
			q.Connection = authzgen.BenchConnection
			for k := rng.IntN(4); k > 0; k-- {
				q.IdPGroups = append(q.IdPGroups, authzgen.GenIdPGroup(20*rng.IntN(spec.Groups/20)))
			}
		}
		checkExplain(t, m, q)
	}
}

// TestExplainAgreesWithResolveRandom: small random documents with what the
// generator never makes — cycles, self-nesting, equal names, dangling ids,
// mappings on direct groups' names, roles assigned directly and through
// groups — agree too.
func TestExplainAgreesWithResolveRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	users := []string{"u0", "u1", "u2", "u3"}
	apps := []string{"app0", "app1", "https://api/"}
	for round := 0; round < 300; round++ {
		doc := &authz.Document{}
		ng, nr, np := 1+rng.IntN(8), 1+rng.IntN(6), 1+rng.IntN(6)
		for i := 0; i < np; i++ {
			a := rng.IntN(len(apps))
			doc.Permissions = append(doc.Permissions, authz.Permission{ID: fmt.Sprint("p", i), Name: fmt.Sprint("perm", rng.IntN(4)), ApplicationID: apps[a]})
		}
		for i := 0; i < nr; i++ {
			a := rng.IntN(len(apps))
			typ := authz.TypeClient
			if a == 2 || rng.IntN(4) == 0 {
				typ = authz.TypeResourceServer
			}
			r := authz.Role{ID: fmt.Sprint("r", i), Name: fmt.Sprint("role", rng.IntN(3)), ApplicationID: apps[a], ApplicationType: typ}
			for k := rng.IntN(4); k > 0; k-- {
				r.Permissions = append(r.Permissions, fmt.Sprint("p", rng.IntN(np+1))) // p<np> dangles
			}
			for k := rng.IntN(2); k > 0; k-- {
				r.Users = append(r.Users, users[rng.IntN(len(users))])
			}
			doc.Roles = append(doc.Roles, r)
		}
		for i := 0; i < ng; i++ {
			g := authz.Group{ID: fmt.Sprint("g", i), Name: fmt.Sprint("G", rng.IntN(ng))}
			for k := rng.IntN(3); k > 0; k-- {
				g.Nested = append(g.Nested, fmt.Sprint("g", rng.IntN(ng+1))) // cycles, self, dangling
			}
			for k := rng.IntN(3); k > 0; k-- {
				g.Members = append(g.Members, users[rng.IntN(len(users))])
			}
			for k := rng.IntN(3); k > 0; k-- {
				g.Roles = append(g.Roles, fmt.Sprint("r", rng.IntN(nr+1)))
			}
			for k := rng.IntN(3); k > 0; k-- {
				label := fmt.Sprint("idp", rng.IntN(3))
				if rng.IntN(2) == 0 {
					label = fmt.Sprint("G", rng.IntN(ng)) // a group's name
				}
				g.Mappings = append(g.Mappings, authz.Mapping{ID: fmt.Sprint("m", i, k), GroupName: label, ConnectionName: fmt.Sprint("c", rng.IntN(2))})
			}
			doc.Groups = append(doc.Groups, g)
		}
		m := authz.NewModel(doc, uint64(round))
		for _, u := range append(users, "nobody") {
			for _, app := range apps {
				for _, conn := range []string{"", "c0", "c1"} {
					q := authz.PolicyQuery{UserID: u, ClientID: app, Connection: conn, IdPGroups: []string{"idp0", "idp2", "G1"}}
					if rng.IntN(2) == 0 {
						q.Audience = "https://api/"
					}
					checkExplain(t, m, q)
				}
			}
		}
	}
}

// TestExplainSampleChains pins the chains the README's sample users get.
func TestExplainSampleChains(t *testing.T) {
	raw, err := os.ReadFile("../../samples/data/claimsmith-full.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := authz.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	m := authz.NewModel(doc, 1)
	e := m.Explain(authz.PolicyQuery{UserID: "auth0|alice", ClientID: "portal-client"})
	chain := func(steps []authz.Step) string {
		var s []string
		for _, st := range steps {
			s = append(s, st.Kind+":"+st.Name)
		}
		return strings.Join(s, " → ")
	}
	var roles []string
	for i := range e.Roles {
		roles = append(roles, chain(e.RoleChain(i)))
	}
	got := strings.Join(roles, "\n")
	// user comes from Company, which nests Engineering > Platform > SRE.
	want := "member:SRE → nested:Platform → nested:Engineering → nested:Company → role:user"
	if !strings.Contains(got, want) {
		t.Fatalf("alice's role chains:\n%s\nwant a line %q", got, want)
	}
	for i, r := range e.Roles {
		if r.Name == "user" {
			if got, want := authz.ChainText(e.RoleChain(i)), "member of SRE → nested in Platform → nested in Engineering → nested in Company → role user"; got != want {
				t.Fatalf("chain text %q, want %q", got, want)
			}
		}
	}
	if len(e.DirectGroups) == 0 || e.Groups[0].Why[0].Via != authz.ViaMember {
		t.Fatalf("alice: direct groups %v, first why %+v", e.DirectGroups, e.Groups[0].Why)
	}
}

// BenchmarkExplain: the user view's data for the benchmark user at 10,000
// groups and 100,000 users (the bound is 200 ms server time).
func BenchmarkExplain(b *testing.B) {
	m := benchModel(100000)
	q := authzgen.BenchQuery()
	e := m.Explain(q)
	b.ReportAllocs()
	for b.Loop() {
		m.Explain(q)
	}
	b.ReportMetric(float64(len(e.Groups)), "groups")
	b.ReportMetric(float64(len(e.Roles)), "roles")
	b.ReportMetric(float64(len(e.Permissions)), "perms")
}

// TestResolveListsARoleOnce is the regression test of a defect the
// equivalence test found: a role carried by one of the user's groups and
// also assigned directly was listed twice when no two roles shared a name
// (the name de-duplication is skipped then).
func TestResolveListsARoleOnce(t *testing.T) {
	doc := &authz.Document{
		Groups:      []authz.Group{{ID: "g", Name: "G", Members: []string{"u"}, Roles: []string{"r"}}},
		Roles:       []authz.Role{{ID: "r", Name: "editor", ApplicationID: "app", Users: []string{"u"}, Permissions: []string{"p"}}},
		Permissions: []authz.Permission{{ID: "p", Name: "write", ApplicationID: "app"}},
	}
	m := authz.NewModel(doc, 1)
	for _, p := range []authz.Policy{m.Resolve(authz.PolicyQuery{UserID: "u", ClientID: "app"}),
		m.ResolveMembers(authz.PolicyQuery{UserID: "u", ClientID: "app"}, []string{"g"}, []string{"r"})} {
		if !slices.Equal(p.Roles, []string{"editor"}) || !slices.Equal(p.Permissions, []string{"write"}) {
			t.Fatalf("roles %v permissions %v, want [editor] [write]", p.Roles, p.Permissions)
		}
	}
}
