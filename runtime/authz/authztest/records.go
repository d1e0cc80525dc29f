package authztest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
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

// RunCommit checks authz.Committer on stores that implement it: Commit
// reports the records of the batch's footprint and of the extra reads as
// they were and became, with the revisions, exactly as Records sees them
// around the write; an expected revision is checked; imports are refused.
func RunCommit(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	c, ok := s.(authz.Committer)
	if !ok {
		t.Skipf("%T does not implement authz.Committer", s)
	}
	fixture := ResolutionFixture()
	Apply(t, s, &authz.ReplaceDocument{Doc: fixture})
	reads := authz.Footprint{MemberOf: []string{"auth0|alice"}, RolesOfUsers: []string{"auth0|alice"}}
	batches := [][]authz.Op{
		{&authz.AddGroupMembers{GroupID: "g-db", UserIDs: []string{"auth0|alice"}}},
		{&authz.RemoveUserFromGroups{UserID: "auth0|alice"}, &authz.AddRoleUsers{RoleID: "r-editor", UserIDs: []string{"auth0|alice"}}},
		{&authz.DeleteRole{ID: "r-viewer", Cascade: true}},
		{&authz.CreateGroup{ID: "g-new", Name: "New"}, &authz.AddGroupMembers{GroupID: "g-new", UserIDs: []string{"auth0|alice"}}},
	}
	for _, ops := range batches {
		fp := authz.FootprintOf(ops...)
		fp.Add(reads)
		want, rev, err := s.Records(ctx, fp)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := c.Commit(ctx, rev, reads, ops...)
		if err != nil {
			t.Fatalf("Commit(%s): %v", opNames(ops), err)
		}
		if ch.Previous != rev || ch.Revision != rev+1 {
			t.Fatalf("Commit(%s): revisions %d → %d, want %d → %d", opNames(ops), ch.Previous, ch.Revision, rev, rev+1)
		}
		if a, b := canon(t, ch.Before), canon(t, want); a != b {
			t.Errorf("Commit(%s): before\n%s\nwant\n%s", opNames(ops), a, b)
		}
		after, arev, err := s.Records(ctx, fp.WithRecordsOf(want))
		if err != nil || arev != ch.Revision {
			t.Fatalf("Records after: rev %d, %v", arev, err)
		}
		if a, b := canon(t, ch.After), canon(t, after); a != b {
			t.Errorf("Commit(%s): after\n%s\nthe store holds\n%s", opNames(ops), a, b)
		}
	}
	rev, _ := s.Revision(ctx)
	if _, err := c.Commit(ctx, rev+1, reads, &authz.AddGroupMembers{GroupID: "g-db", UserIDs: []string{"x"}}); !errors.Is(err, runtime.ErrConflict) {
		t.Fatalf("stale expected revision: %v", err)
	}
	if _, err := c.Commit(ctx, 0, authz.Footprint{}, &authz.ReplaceDocument{Doc: fixture}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("import through Commit: %v", err)
	}
	if now, _ := s.Revision(ctx); now != rev {
		t.Fatalf("refused commits changed the revision: %d → %d", rev, now)
	}
}
