// Package authztest is the conformance suite every authz.Store backend runs
// (memory, file, redis): CRUD of every op, referential rules, optimistic
// revision conflicts, profiles, resolution exactly as the Auth0 Authorization
// Extension resolves, import/export round trip and concurrent writers. It
// also holds the deterministic model generator the benchmarks share.
package authztest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Opener returns a new, empty store; the suite closes it.
type Opener func(t *testing.T) authz.Store

// Run runs the whole conformance suite against the backend open returns.
func Run(t *testing.T, open Opener) {
	t.Run("Resolution", func(t *testing.T) { RunResolution(t, open) })
	t.Run("CRUD", func(t *testing.T) { RunCRUD(t, open) })
	t.Run("Referential", func(t *testing.T) { RunReferential(t, open) })
	t.Run("Validation", func(t *testing.T) { RunValidation(t, open) })
	t.Run("Revisions", func(t *testing.T) { RunRevisions(t, open) })
	t.Run("Applications", func(t *testing.T) { RunApplications(t, open) })
	t.Run("OAuthClients", func(t *testing.T) { RunOAuthClients(t, open) })
	t.Run("Profiles", func(t *testing.T) { RunProfiles(t, open) })
	t.Run("RoundTrip", func(t *testing.T) { RunRoundTrip(t, open) })
	t.Run("Records", func(t *testing.T) { RunRecords(t, open) })
	t.Run("Commit", func(t *testing.T) { RunCommit(t, open) })
	t.Run("Concurrency", func(t *testing.T) { RunConcurrency(t, open, 50) })
}

func openStore(t *testing.T, open Opener) authz.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Apply applies ops without a revision check and fails the test on error.
func Apply(t testing.TB, s authz.Store, ops ...authz.Op) uint64 {
	t.Helper()
	rev, err := s.Apply(context.Background(), 0, ops...)
	if err != nil {
		t.Fatalf("Apply(%s): %v", opNames(ops), err)
	}
	return rev
}

func opNames(ops []authz.Op) string {
	n := make([]string, len(ops))
	for i, op := range ops {
		n[i] = fmt.Sprintf("%T", op)
	}
	return strings.Join(n, ", ")
}

func doc(t testing.TB, s authz.Store) *authz.Document {
	t.Helper()
	m, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return m.Document()
}

func findGroup(d *authz.Document, id string) *authz.Group {
	for i := range d.Groups {
		if d.Groups[i].ID == id {
			return &d.Groups[i]
		}
	}
	return nil
}

func findRole(d *authz.Document, id string) *authz.Role {
	for i := range d.Roles {
		if d.Roles[i].ID == id {
			return &d.Roles[i]
		}
	}
	return nil
}

func findPerm(d *authz.Document, id string) *authz.Permission {
	for i := range d.Permissions {
		if d.Permissions[i].ID == id {
			return &d.Permissions[i]
		}
	}
	return nil
}

// expectErr asserts err matches target and that its text names every want.
func expectErr(t *testing.T, what string, err, target error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %q does not match %v", what, err, target)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: error %q does not name %q", what, err, w)
		}
	}
}

// unchanged asserts a failed write left revision and document as they were.
func unchanged(t *testing.T, s authz.Store, rev uint64, before []byte) {
	t.Helper()
	ctx := context.Background()
	got, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != rev {
		t.Fatalf("failed write changed the revision: %d → %d", rev, got)
	}
	if after := export(t, s); !bytes.Equal(before, after) {
		t.Fatalf("failed write changed the document:\nbefore %s\nafter  %s", before, after)
	}
}

func export(t testing.TB, s authz.Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := authz.Encode(&b, doc(t, s), authz.ExportOptions{Full: true}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func state(t testing.TB, s authz.Store) (uint64, []byte) {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev, export(t, s)
}

// RunResolution imports ResolutionFixture and checks every ResolutionCase,
// through the store's ResolvePolicy and through its Snapshot's Resolve.
func RunResolution(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	rev := Apply(t, s, &authz.ReplaceDocument{Doc: ResolutionFixture()})
	m, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ResolutionCases() {
		t.Run(c.Name, func(t *testing.T) {
			got, err := s.ResolvePolicy(ctx, c.Query)
			if err != nil {
				t.Fatalf("ResolvePolicy: %v", err)
			}
			checkPolicy(t, "ResolvePolicy", got, c.Want)
			if got.Revision != rev {
				t.Errorf("policy revision %d, store at %d", got.Revision, rev)
			}
			checkPolicy(t, "Snapshot.Resolve", m.Resolve(c.Query), c.Want)
		})
	}
}

func checkPolicy(t *testing.T, via string, got, want authz.Policy) {
	t.Helper()
	eq := func(a, b []string) bool { return slices.Equal(a, b) }
	if !eq(got.Groups, want.Groups) || !eq(got.Roles, want.Roles) || !eq(got.Permissions, want.Permissions) {
		t.Fatalf("%s:\n got groups=%q roles=%q permissions=%q\nwant groups=%q roles=%q permissions=%q",
			via, got.Groups, got.Roles, got.Permissions, want.Groups, want.Roles, want.Permissions)
	}
	if got.Groups == nil || got.Roles == nil || got.Permissions == nil {
		t.Fatalf("%s: nil list in %+v (the policy endpoint answers [] for none)", via, got)
	}
}

// RunCRUD creates, reads, updates and deletes every entity through the ops.
func RunCRUD(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	Apply(t, s,
		&authz.CreatePermission{ID: "p1", Name: "read:docs", Description: "Read", ApplicationType: authz.TypeClient, ApplicationID: Portal},
		&authz.CreatePermission{ID: "p2", Name: "write:docs", ApplicationType: authz.TypeClient, ApplicationID: Portal},
		&authz.CreateRole{ID: "r1", Name: "viewer", Description: "Views", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: []string{"p1"}},
		&authz.CreateGroup{ID: "g1", Name: "Engineering", Description: "Engineers"},
		&authz.CreateGroup{ID: "g2", Name: "Backend"},
	)
	d := doc(t, s)
	if g := findGroup(d, "g1"); g == nil || g.Name != "Engineering" || g.Description != "Engineers" {
		t.Fatalf("created group: %+v", g)
	}
	if r := findRole(d, "r1"); r == nil || r.Name != "viewer" || !slices.Equal(r.Permissions, []string{"p1"}) || r.ApplicationID != Portal {
		t.Fatalf("created role: %+v", r)
	}
	if p := findPerm(d, "p1"); p == nil || p.Name != "read:docs" || p.Description != "Read" {
		t.Fatalf("created permission: %+v", p)
	}

	Apply(t, s,
		&authz.AddGroupMembers{GroupID: "g1", UserIDs: []string{"u1", "u2", "u1"}},
		&authz.AddGroupMembers{GroupID: "g1", UserIDs: []string{"u2", "u3"}},
		&authz.AddNestedGroups{GroupID: "g1", GroupIDs: []string{"g2"}},
		&authz.AddGroupRoles{GroupID: "g1", RoleIDs: []string{"r1"}},
		&authz.AddGroupMappings{GroupID: "g2", Mappings: []authz.Mapping{{ID: "m1", GroupName: "Domain Users", ConnectionName: "corp-ad"}}},
		&authz.AddRoleUsers{RoleID: "r1", UserIDs: []string{"u9"}},
		&authz.AddRolePermissions{RoleID: "r1", PermissionIDs: []string{"p2", "p1"}},
	)
	d = doc(t, s)
	g1, g2, r1 := findGroup(d, "g1"), findGroup(d, "g2"), findRole(d, "r1")
	if !slices.Equal(g1.Members, []string{"u1", "u2", "u3"}) || !slices.Equal(g1.Nested, []string{"g2"}) || !slices.Equal(g1.Roles, []string{"r1"}) {
		t.Fatalf("group after adds: %+v", g1)
	}
	if len(g2.Mappings) != 1 || g2.Mappings[0].ID != "m1" || g2.Mappings[0].GroupName != "Domain Users" || g2.Mappings[0].ConnectionName != "corp-ad" {
		t.Fatalf("mappings: %+v", g2.Mappings)
	}
	if !slices.Equal(r1.Users, []string{"u9"}) || !slices.Equal(r1.Permissions, []string{"p1", "p2"}) {
		t.Fatalf("role after adds: %+v", r1)
	}
	pol, err := s.ResolvePolicy(ctx, authz.PolicyQuery{UserID: "u1", ClientID: Portal})
	if err != nil {
		t.Fatal(err)
	}
	checkPolicy(t, "after adds", pol, authz.Policy{Groups: s2("Engineering"), Roles: s2("viewer"), Permissions: s2("read:docs", "write:docs")})
	pol, _ = s.ResolvePolicy(ctx, authz.PolicyQuery{UserID: "x", ClientID: Portal, Connection: "corp-ad", IdPGroups: s2("Domain Users")})
	checkPolicy(t, "mapped after adds", pol, authz.Policy{Groups: s2("Engineering", "Backend"), Roles: s2("viewer"), Permissions: s2("read:docs", "write:docs")})

	Apply(t, s,
		&authz.UpdateGroup{ID: "g1", Name: "Engineering Team", Description: "All engineers"},
		&authz.UpdateRole{ID: "r1", Name: "reader", Description: "Reads", ApplicationType: authz.TypeClient, ApplicationID: Portal},
		&authz.UpdatePermission{ID: "p2", Name: "edit:docs", Description: "Edit", ApplicationType: authz.TypeClient, ApplicationID: Portal},
		&authz.SetConfiguration{Configuration: authz.Configuration{APIKey: "k1", GroupsInToken: ptr(true)}},
	)
	d = doc(t, s)
	if g := findGroup(d, "g1"); g.Name != "Engineering Team" || g.Description != "All engineers" || len(g.Members) != 3 {
		t.Fatalf("updated group: %+v", g)
	}
	if r := findRole(d, "r1"); r.Name != "reader" || r.Description != "Reads" || !slices.Equal(r.Permissions, []string{"p1", "p2"}) {
		t.Fatalf("updated role (permissions must stay when not given): %+v", r)
	}
	if p := findPerm(d, "p2"); p.Name != "edit:docs" || p.Description != "Edit" {
		t.Fatalf("updated permission: %+v", p)
	}
	if len(d.Configuration) != 1 || d.Configuration[0].ID != "v1" || d.Configuration[0].APIKey != "k1" || !*d.Configuration[0].GroupsInToken {
		t.Fatalf("configuration: %+v", d.Configuration)
	}
	Apply(t, s, &authz.UpdateRole{ID: "r1", Name: "reader", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: []string{"p2"}})
	if r := findRole(doc(t, s), "r1"); !slices.Equal(r.Permissions, []string{"p2"}) {
		t.Fatalf("UpdateRole with permissions: %+v", r)
	}

	Apply(t, s,
		&authz.RemoveGroupMembers{GroupID: "g1", UserIDs: []string{"u2", "never-there"}},
		&authz.RemoveNestedGroups{GroupID: "g1", GroupIDs: []string{"g2"}},
		&authz.RemoveGroupRoles{GroupID: "g1", RoleIDs: []string{"r1"}},
		&authz.RemoveGroupMappings{GroupID: "g2", MappingIDs: []string{"m1"}},
		&authz.RemoveRoleUsers{RoleID: "r1", UserIDs: []string{"u9"}},
		&authz.RemoveRolePermissions{RoleID: "r1", PermissionIDs: []string{"p2"}},
	)
	d = doc(t, s)
	g1, g2, r1 = findGroup(d, "g1"), findGroup(d, "g2"), findRole(d, "r1")
	if !slices.Equal(g1.Members, []string{"u1", "u3"}) || len(g1.Nested) != 0 || len(g1.Roles) != 0 || len(g2.Mappings) != 0 {
		t.Fatalf("group after removes: %+v / %+v", g1, g2)
	}
	if len(r1.Users) != 0 || len(r1.Permissions) != 0 {
		t.Fatalf("role after removes: %+v", r1)
	}

	Apply(t, s,
		&authz.AddGroupMembers{GroupID: "g2", UserIDs: []string{"u1"}},
		&authz.RemoveUserFromGroups{UserID: "u1"},
	)
	d = doc(t, s)
	if slices.Contains(findGroup(d, "g1").Members, "u1") || slices.Contains(findGroup(d, "g2").Members, "u1") {
		t.Fatal("RemoveUserFromGroups without ids must remove the user from every group")
	}
	Apply(t, s,
		&authz.AddGroupMembers{GroupID: "g1", UserIDs: []string{"u5"}},
		&authz.AddGroupMembers{GroupID: "g2", UserIDs: []string{"u5"}},
		&authz.RemoveUserFromGroups{UserID: "u5", GroupIDs: []string{"g2"}},
	)
	d = doc(t, s)
	if !slices.Contains(findGroup(d, "g1").Members, "u5") || slices.Contains(findGroup(d, "g2").Members, "u5") {
		t.Fatal("RemoveUserFromGroups with ids must remove the user from those groups only")
	}

	Apply(t, s, &authz.DeleteGroup{ID: "g2"}, &authz.DeleteRole{ID: "r1"}, &authz.DeletePermission{ID: "p1"})
	d = doc(t, s)
	if findGroup(d, "g2") != nil || findRole(d, "r1") != nil || findPerm(d, "p1") != nil || findGroup(d, "g1") == nil || findPerm(d, "p2") == nil {
		t.Fatalf("after deletes: %+v", d)
	}

	for _, c := range []struct {
		name string
		op   authz.Op
		want []string
	}{
		{"update unknown group", &authz.UpdateGroup{ID: "nope", Name: "x"}, s2("group", "nope")},
		{"delete unknown group", &authz.DeleteGroup{ID: "nope"}, s2("group", "nope")},
		{"members of unknown group", &authz.AddGroupMembers{GroupID: "nope", UserIDs: s2("u")}, s2("group", "nope")},
		{"nest unknown group", &authz.AddNestedGroups{GroupID: "g1", GroupIDs: s2("nope")}, s2("group", "nope")},
		{"unknown role to group", &authz.AddGroupRoles{GroupID: "g1", RoleIDs: s2("nope")}, s2("role", "nope")},
		{"unknown role", &authz.AddRoleUsers{RoleID: "nope", UserIDs: s2("u")}, s2("role", "nope")},
		{"delete unknown role", &authz.DeleteRole{ID: "nope"}, s2("role", "nope")},
		{"unknown permission", &authz.DeletePermission{ID: "nope"}, s2("permission", "nope")},
		{"unknown permission to role", &authz.CreateRole{ID: "r9", Name: "x", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: s2("nope")}, s2("permission", "nope")},
		{"user from unknown group", &authz.RemoveUserFromGroups{UserID: "u1", GroupIDs: s2("nope")}, s2("group", "nope")},
		{"unknown application", &authz.DeleteApplication{ClientID: "nope"}, s2("application", "nope")},
	} {
		rev, before := state(t, s)
		_, err := s.Apply(ctx, 0, c.op)
		expectErr(t, c.name, err, runtime.ErrNotFound, c.want...)
		unchanged(t, s, rev, before)
	}
}

func s2(v ...string) []string { return v }

func ptr[T any](v T) *T { return &v }

// RunReferential checks the extension's delete rules and the cascade flag.
func RunReferential(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	Apply(t, s, &authz.ReplaceDocument{Doc: ResolutionFixture()})

	for _, c := range []struct {
		name  string
		op    authz.Op
		names []string
	}{
		{"permission used by roles", &authz.DeletePermission{ID: "p-read"}, s2(`permission "p-read"`, `"r-viewer"`, `"r-editor"`, `"r-weird"`)},
		{"role used by groups", &authz.DeleteRole{ID: "r-viewer"}, s2(`role "r-viewer"`, `"g-eng"`, `"g-con2"`)},
		{"group nested in another", &authz.DeleteGroup{ID: "g-backend"}, s2(`group "g-backend"`, `"g-eng"`)},
	} {
		rev, before := state(t, s)
		_, err := s.Apply(ctx, 0, c.op)
		expectErr(t, c.name, err, runtime.ErrInUse, c.names...)
		var iu *authz.InUseError
		if !errors.As(err, &iu) {
			t.Fatalf("%s: %T is not *authz.InUseError", c.name, err)
		}
		unchanged(t, s, rev, before)
	}

	Apply(t, s, &authz.DeletePermission{ID: "p-read", Cascade: true})
	d := doc(t, s)
	for _, rid := range s2("r-viewer", "r-editor", "r-weird") {
		if slices.Contains(findRole(d, rid).Permissions, "p-read") {
			t.Fatalf("cascade left p-read in role %s", rid)
		}
	}
	Apply(t, s, &authz.DeleteRole{ID: "r-viewer", Cascade: true})
	d = doc(t, s)
	if slices.Contains(findGroup(d, "g-eng").Roles, "r-viewer") || slices.Contains(findGroup(d, "g-con2").Roles, "r-viewer") || findRole(d, "r-viewer") != nil {
		t.Fatal("role cascade left references")
	}
	Apply(t, s, &authz.DeleteGroup{ID: "g-backend", Cascade: true})
	d = doc(t, s)
	if slices.Contains(findGroup(d, "g-eng").Nested, "g-backend") || findGroup(d, "g-backend") != nil {
		t.Fatal("group cascade left references")
	}
	// g-db lost its parent chain: dave keeps only Databases.
	pol, err := s.ResolvePolicy(ctx, authz.PolicyQuery{UserID: "auth0|dave", ClientID: Portal})
	if err != nil {
		t.Fatal(err)
	}
	checkPolicy(t, "after cascades", pol, authz.Policy{Groups: s2("Databases"), Roles: s2(), Permissions: s2()})
	// A group nested only in itself or in a cycle partner: deleting a cycle
	// member is refused like any nested group.
	_, err = s.Apply(ctx, 0, &authz.DeleteGroup{ID: "g-cyc-a"})
	expectErr(t, "cycle member", err, runtime.ErrInUse, `"g-cyc-b"`)
	// Once unused, a permission deletes without cascade.
	Apply(t, s, &authz.RemoveRolePermissions{RoleID: "r-Admin", PermissionIDs: s2("p-upper")}, &authz.DeletePermission{ID: "p-upper"})
	if findPerm(doc(t, s), "p-upper") != nil {
		t.Fatal("unused permission not deleted")
	}
}
