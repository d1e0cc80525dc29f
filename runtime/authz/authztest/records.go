package authztest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// RunRecords checks the narrow read (authz.RecordReader): for every kind of
// footprint the store returns exactly the matching records, whole and in
// storage order, at the store's revision; and every op's footprint covers
// what it needs, so an op run on Records(its footprint) changes the records
// exactly as the store's Apply does.
func RunRecords(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	fixture := ResolutionFixture()
	fixture.Claimsmith = &authz.Section{Applications: []authz.Application{{ClientID: Portal, Name: "Portal"}}}
	rev := Apply(t, s, &authz.ReplaceDocument{Doc: fixture})
	cases := map[string]authz.Footprint{
		"ids":            {Groups: []string{"g-db", "g-missing", "g-eng"}, Roles: []string{"r-admin"}, Permissions: []string{"p-read", "p-none"}},
		"group names":    {GroupNames: []string{"CONTRACTORS", "nobody"}},
		"parents":        {ParentsOf: []string{"g-ad", "g-cyc-b"}},
		"member of":      {MemberOf: []string{"auth0|carol", "auth0|nobody"}},
		"roles of users": {RolesOfUsers: []string{"auth0|alice", "auth0|ivan"}},
		"groups w/ role": {GroupsWithRoles: []string{"r-viewer", "r-editor"}},
		"roles w/ perm":  {RolesWithPermissions: []string{"p-read"}},
		"role names":     {RoleNames: []authz.AppName{{ApplicationID: Portal, Name: "viewer"}, {ApplicationID: Reports, Name: "admin"}, {ApplicationID: Portal, Name: "ADMIN"}}},
		"perm names":     {PermissionNames: []authz.AppName{{ApplicationID: Portal, Name: "read:docs"}, {ApplicationID: API, Name: "read:docs"}}},
		"conf and apps":  {Configuration: true, Applications: true},
		"empty":          {},
	}
	for name, fp := range cases {
		got, grev, err := s.Records(ctx, fp)
		if err != nil {
			t.Fatalf("%s: Records: %v", name, err)
		}
		if grev != rev {
			t.Errorf("%s: revision %d, want %d", name, grev, rev)
		}
		want := selectRecords(fixture, fp)
		if a, b := canon(t, got), canon(t, want); a != b {
			t.Errorf("%s: Records =\n%s\nwant\n%s", name, a, b)
		}
	}

	// Every op's footprint is enough to run it: the op applied to the
	// records of its footprint yields what the store then holds.
	ops := []authz.Op{
		&authz.CreateGroup{ID: "g-new", Name: "New"},
		&authz.UpdateGroup{ID: "g-con1", Name: "contractors"}, // clashes with g-con2: refused
		&authz.DeleteGroup{ID: "g-backend", Cascade: true},
		&authz.AddGroupMembers{GroupID: "g-eng", UserIDs: []string{"auth0|zed"}},
		&authz.RemoveUserFromGroups{UserID: "auth0|carol"},
		&authz.AddNestedGroups{GroupID: "g-api", GroupIDs: []string{"g-db"}},
		&authz.AddGroupRoles{GroupID: "g-api", RoleIDs: []string{"r-viewer"}},
		&authz.DeleteRole{ID: "r-viewer", Cascade: true},
		&authz.CreateRole{ID: "r-new", Name: "viewer", ApplicationType: authz.TypeClient, ApplicationID: Portal}, // name taken
		&authz.AddRolePermissions{RoleID: "r-editor", PermissionIDs: []string{"p-admin"}},
		&authz.DeletePermission{ID: "p-read", Cascade: true},
		&authz.CreatePermission{ID: "p-new", Name: "new:thing", ApplicationType: authz.TypeClient, ApplicationID: Portal},
		&authz.PutApplication{Application: authz.Application{ClientID: "c-new", Name: "New"}},
		&authz.SetConfiguration{Configuration: authz.Configuration{APIKey: "rotated"}},
	}
	for _, op := range ops {
		fp := op.Footprint()
		before, brev, err := s.Records(ctx, fp)
		if err != nil {
			t.Fatal(err)
		}
		local := before.DeepCopy()
		localErr := op.Apply(local)
		nrev, err := s.Apply(ctx, brev, op)
		if (err == nil) != (localErr == nil) {
			t.Fatalf("%T: store says %v, the op on its footprint says %v", op, err, localErr)
		}
		if err != nil {
			continue
		}
		after, arev, err := s.Records(ctx, fp)
		if err != nil || arev != nrev {
			t.Fatalf("%T: Records after: rev %d (want %d), %v", op, arev, nrev, err)
		}
		if a, b := canon(t, after), canon(t, selectRecords(local, fp)); a != b {
			t.Errorf("%T: store has\n%s\nthe op on its footprint gives\n%s", op, a, b)
		}
	}
}

// selectRecords is the reference answer: a plain scan of doc.
func selectRecords(doc *authz.Document, fp authz.Footprint) *authz.Document {
	out := &authz.Document{}
	anyOf := func(list []string, f func(string) bool) bool { return slices.ContainsFunc(list, f) }
	for _, g := range doc.Groups {
		if slices.Contains(fp.Groups, g.ID) ||
			anyOf(fp.GroupNames, func(n string) bool { return strings.EqualFold(n, g.Name) }) ||
			anyOf(fp.ParentsOf, func(id string) bool { return slices.Contains(g.Nested, id) }) ||
			anyOf(fp.MemberOf, func(u string) bool { return slices.Contains(g.Members, u) }) ||
			anyOf(fp.GroupsWithRoles, func(id string) bool { return slices.Contains(g.Roles, id) }) {
			out.Groups = append(out.Groups, g)
		}
	}
	for _, r := range doc.Roles {
		if slices.Contains(fp.Roles, r.ID) || slices.Contains(fp.RoleNames, authz.AppName{ApplicationID: r.ApplicationID, Name: r.Name}) ||
			anyOf(fp.RolesOfUsers, func(u string) bool { return slices.Contains(r.Users, u) }) ||
			anyOf(fp.RolesWithPermissions, func(id string) bool { return slices.Contains(r.Permissions, id) }) {
			out.Roles = append(out.Roles, r)
		}
	}
	for _, p := range doc.Permissions {
		if slices.Contains(fp.Permissions, p.ID) || slices.Contains(fp.PermissionNames, authz.AppName{ApplicationID: p.ApplicationID, Name: p.Name}) {
			out.Permissions = append(out.Permissions, p)
		}
	}
	if fp.Configuration {
		out.Configuration = doc.Configuration
	}
	if fp.Applications {
		out.Claimsmith = &authz.Section{}
		if doc.Claimsmith != nil {
			out.Claimsmith.Applications = doc.Claimsmith.Applications
		}
	}
	return out
}

// canon renders a partial document for comparison (empty and nil lists alike).
func canon(t testing.TB, d *authz.Document) string {
	t.Helper()
	type view struct {
		Configuration []authz.Configuration
		Groups        []authz.Group
		Roles         []authz.Role
		Permissions   []authz.Permission
		Applications  []authz.Application
	}
	v := view{Configuration: d.Configuration, Groups: d.Groups, Roles: d.Roles, Permissions: d.Permissions}
	if d.Claimsmith != nil {
		v.Applications = d.Claimsmith.Applications
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("[]", "null").Replace(string(b))
}
