package admin_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// TestExplainAgreesWithTheLoginResolver: what the service explains is what
// a login resolves through the store's own policy path (the memory store's
// model; the Redis store's one-round-trip login script), for generated
// users, after writes, and the profile is the stored one.
func TestExplainAgreesWithTheLoginResolver(t *testing.T) {
	ctx := context.Background()
	spec := authzgen.GenSpec{Groups: 300, Roles: 60, Permissions: 120, Users: 200, Clients: 3, GroupsPerUser: 4, MaxDepth: 4, Seed: 9}
	mem, memStore, _ := newMemoryService(t)
	srv := redistest.Start(t, redistest.Options{})
	red := node(t, srv.Addr())
	for name, c := range map[string]struct {
		svc *admin.Service
		st  authz.PolicyResolver
	}{"memory": {mem, memStore}, "redis": {red, red.Store().(authz.PolicyResolver)}} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.svc.Apply(ctx, admin.Caller{}, admin.Change{Action: "import", Ops: []authz.Op{&authz.ReplaceDocument{Doc: authzgen.Generate(spec)}}}, admin.IfMatch{}); err != nil {
				t.Fatal(err)
			}
			// A direct role that a group also carries, a nesting and a new
			// member: the explanation follows the writes.
			if _, err := c.svc.Apply(ctx, admin.Caller{}, admin.Change{Action: "test", Ops: []authz.Op{
				&authz.AddRoleUsers{RoleID: "role-0000", UserIDs: []string{authzgen.GenUserID(1)}},
				&authz.AddGroupMembers{GroupID: "group-00299", UserIDs: []string{authzgen.GenUserID(2)}},
			}}, admin.IfMatch{}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 40; i++ {
				q := authz.PolicyQuery{UserID: authzgen.GenUserID(i), ClientID: authzgen.GenClientID(i % 4), Connection: authzgen.BenchConnection,
					IdPGroups: []string{authzgen.GenIdPGroup(20 * (i % 15))}}
				if i%2 == 0 {
					q.Audience = authzgen.BenchAudience
				}
				v, err := c.svc.Explain(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				want, err := c.st.ResolvePolicy(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got := v.Policy()
				if !slices.Equal(want.Groups, got.Groups) || !slices.Equal(want.Roles, got.Roles) || !slices.Equal(want.Permissions, got.Permissions) {
					t.Fatalf("%+v:\nlogin   %v %v %v\nexplain %v %v %v", q, want.Groups, want.Roles, want.Permissions, got.Groups, got.Roles, got.Permissions)
				}
				if v.Profile == nil {
					t.Fatal("no profile in the user view")
				}
			}
			if _, err := c.svc.Store().(runtime.ProfileStore).PatchProfile(ctx, "auth0|p", map[string]any{"plan": "gold"}, map[string]any{"theme": "dark"}); err != nil {
				t.Fatal(err)
			}
			v, err := c.svc.Explain(ctx, authz.PolicyQuery{UserID: "auth0|p", ClientID: "client-00"})
			if err != nil {
				t.Fatal(err)
			}
			if v.Profile.AppMetadata["plan"] != "gold" || v.Profile.UserMetadata["theme"] != "dark" {
				t.Fatalf("profile %+v", v.Profile)
			}
		})
	}
}

// TestExplainRefusesBadQueries names the field and reads nothing.
func TestExplainRefusesBadQueries(t *testing.T) {
	svc, _, _ := newMemoryService(t)
	for _, c := range []struct {
		q     authz.PolicyQuery
		field string
	}{
		{authz.PolicyQuery{ClientID: "c"}, "user_id"},
		{authz.PolicyQuery{UserID: "u"}, "client_id"},
		{authz.PolicyQuery{UserID: "u", ClientID: "c", Audience: strings.Repeat("a", 2000)}, "audience"},
	} {
		_, err := svc.Explain(context.Background(), c.q)
		var ve *runtime.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || !errors.Is(err, runtime.ErrInvalid) {
			t.Fatalf("%+v: %v, want a validation error naming %s", c.q, err, c.field)
		}
	}
}

// TestAppChoices lists registered applications and the ids roles name.
func TestAppChoices(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newMemoryService(t)
	doc := &authz.Document{
		Roles:      []authz.Role{{ID: "r1", Name: "a", ApplicationID: "app-b"}, {ID: "r2", Name: "b", ApplicationID: "https://api/", ApplicationType: authz.TypeResourceServer}},
		Claimsmith: &authz.Section{Applications: []authz.Application{{ClientID: "app-b", Name: "B"}, {ClientID: "app-a", Name: "A"}}},
	}
	if _, err := svc.Apply(ctx, admin.Caller{}, admin.Change{Action: "import", Ops: []authz.Op{&authz.ReplaceDocument{Doc: doc}}}, admin.IfMatch{}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.AppChoices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []admin.AppChoice{{ID: "app-a", Type: "client", Name: "A"}, {ID: "app-b", Type: "client", Name: "B"}, {ID: "https://api/", Type: "resource_server"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v want %+v", got, want)
	}
}

// BenchmarkAdminExplain: the user view's data through the service at
// 10,000 groups and 100,000 users (bound: 200 ms).
func BenchmarkAdminExplain(b *testing.B) {
	ctx := context.Background()
	svc, st, _ := newMemoryServiceTB(b)
	if _, err := st.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authzgen.Generate(authzgen.BenchSpec(100000))}); err != nil {
		b.Fatal(err)
	}
	q := authzgen.BenchQuery()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Explain(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}

func newMemoryServiceTB(tb testing.TB) (*admin.Service, *memory.Store, admin.AuditLog) {
	tb.Helper()
	st := memory.New(memory.Options{})
	audit, err := adminfile.OpenAuditLog(tb.TempDir(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: audit})
	if err != nil {
		tb.Fatal(err)
	}
	return svc, st, audit
}
