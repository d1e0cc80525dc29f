package admin

import (
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Regression (issue 14 item 9): ids that are not valid UTF-8 were accepted
// and rewritten to U+FFFD when the store persisted them, so a grant to
// user "\xff" belonged to user "\uFFFD" after a restart; 1 MB ids were
// accepted too. Every entry point of the admin API refuses them with a 400
// and changes nothing.
func TestAdminRefusesInvalidIDs(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g1", "name": "G"})
		f.must(t, 201, "POST", "/api/roles", map[string]any{"_id": "r1", "name": "R", "applicationType": "client", "applicationId": "app"})
		long := strings.Repeat("u", 2000)
		// In the path.
		f.fails(t, 400, "UTF-8", "PATCH", "/api/users/%FF/groups", `["g1"]`)
		f.fails(t, 400, "UTF-8", "PATCH", "/api/users/%FF/roles", `["r1"]`)
		f.fails(t, 400, "UTF-8", "GET", "/api/users/%C3%28/groups", nil)
		f.fails(t, 400, "UTF-8", "PUT", "/api/applications/%FF", `{"name":"x"}`)
		f.fails(t, 400, "bytes", "PATCH", "/api/users/"+long+"/groups", `["g1"]`)
		// In bodies: the JSON decoder would replace the byte by U+FFFD.
		f.fails(t, 400, "UTF-8", "PATCH", "/api/groups/g1/members", "[\"auth0|\xff\"]")
		f.fails(t, 400, "UTF-8", "PATCH", "/api/roles/r1/users", "[\"\xfe\"]")
		f.fails(t, 400, "UTF-8", "POST", "/api/groups", "{\"_id\":\"\xff\",\"name\":\"x\"}")
		f.fails(t, 400, "bytes", "PATCH", "/api/groups/g1/members", `["`+long+`"]`)
		f.fails(t, 400, "bytes", "PATCH", "/api/roles/r1/users", `["`+long+`"]`)
		f.fails(t, 400, "bytes", "POST", "/api/groups", `{"_id":"`+long+`","name":"x"}`)
		f.fails(t, 400, "bytes", "POST", "/api/applications", `{"client_id":"`+strings.Repeat("c", 1100)+`"}`)
		// In an import.
		f.fails(t, 400, "UTF-8", "POST", "/api/import?replace=true", "{\"groups\":[{\"_id\":\"g1\",\"name\":\"G\",\"members\":[\"\xff\"]}]}")
		f.fails(t, 400, "bytes", "POST", "/api/import?replace=true", `{"groups":[{"_id":"g1","name":"G","members":["`+long+`"]}]}`)
		// A long but sane id (an Auth0 SAML user id) is fine.
		ok := "samlp|corp-idp|" + strings.Repeat("a", 900) + "@example.com"
		f.wrote(t, 204, "group.members.add", "PATCH", "/api/groups/g1/members", []string{ok})
	})
}

// Regression (issue 14 item 12): a body of null created an application,
// and a UTF-16 charset was read as UTF-8.
func TestAdminRefusesNullBodyAndForeignCharset(t *testing.T) {
	f := newAdminFixture(t)
	f.fails(t, 400, "null", "PUT", "/api/applications/app1", `null`)
	f.fails(t, 400, "null", "POST", "/api/applications", ` null `)
	f.fails(t, 400, "null", "POST", "/api/groups", `null`)
	f.fails(t, 404, "app1", "GET", "/api/applications/app1", nil)
	f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g1", "name": "G"})
	for _, ct := range []string{"application/json; charset=utf-16", "application/json; charset=UTF-16LE", "application/json;charset=latin1"} {
		f.fails(t, 415, "UTF-8", "PATCH", "/api/groups/g1/members", `["u1"]`, "Content-Type", ct)
		f.fails(t, 415, "UTF-8", "POST", "/api/import?replace=true", `{"groups":[]}`, "Content-Type", ct)
	}
	f.wrote(t, 204, "group.members.add", "PATCH", "/api/groups/g1/members", `["u1"]`, "Content-Type", "application/json; charset=UTF-8")
	f.wrote(t, 204, "group.members.add", "PATCH", "/api/groups/g1/members", `["u2"]`, "Content-Type", "application/json")
}

// Regression (issue 14 item 12): POST /api/import {} wiped every group,
// role and permission without any guard. An import that would remove
// anything needs ?replace=true; ?dry_run=true previews it.
func TestAdminImportNeedsReplaceToRemove(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g1", "name": "G1"})
		f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g2", "name": "G2"})
		f.must(t, 201, "POST", "/api/permissions", map[string]any{"_id": "p1", "name": "read", "applicationType": "client", "applicationId": "app"})
		f.must(t, 201, "POST", "/api/roles", map[string]any{"_id": "r1", "name": "R", "applicationType": "client", "applicationId": "app", "permissions": []string{"p1"}})
		f.fails(t, 409, "would remove 2 groups, 1 role, 1 permission", "POST", "/api/import", `{}`)
		f.fails(t, 409, "replace=true", "POST", "/api/configuration/import", `{"groups":[]}`)
		f.fails(t, 400, "replace", "POST", "/api/import?replace=maybe", `{}`)

		// The preview names what would go, come and change, and changes nothing.
		next := `{"groups":[{"_id":"g1","name":"G1 renamed"},{"_id":"g3","name":"G3"}],"roles":[],"permissions":[{"_id":"p1","name":"read","applicationType":"client","applicationId":"app"}]}`
		r := f.must(t, 200, "POST", "/api/import?dry_run=true", next)
		var prev importPreview
		r.json(t, &prev)
		if !prev.DryRun || !prev.RequiresReplace || prev.Revision != f.revision(t) ||
			!slices.Equal(prev.Groups.Added, []string{"g3"}) || !slices.Equal(prev.Groups.Removed, []string{"g2"}) ||
			!slices.Equal(prev.Groups.Changed, []string{"g1"}) || !slices.Equal(prev.Roles.Removed, []string{"r1"}) ||
			prev.Permissions.Unchanged != 1 || len(prev.Permissions.Removed) != 0 {
			t.Fatalf("preview %s", r.body)
		}
		if f.auditTotal(t) != 4 {
			t.Fatal("a dry run was audited")
		}
		f.fails(t, 409, "1 group, 1 role", "POST", "/api/import", next)
		f.wrote(t, 200, "import", "POST", "/api/import?replace=true", next)
		f.fails(t, 404, "g2", "GET", "/api/groups/g2", nil)
		// An import that only adds or changes needs no confirmation.
		more := `{"groups":[{"_id":"g1","name":"G1"},{"_id":"g3","name":"G3"},{"_id":"g4","name":"G4"}],"roles":[],"permissions":[{"_id":"p1","name":"read","applicationType":"client","applicationId":"app"}]}`
		f.wrote(t, 200, "import", "POST", "/api/import", more)
		f.wrote(t, 200, "import", "POST", "/api/import?replace=true", `{}`)
		if n := len(list[authz.Group](t, f, "/api/groups", "groups").Items); n != 0 {
			t.Fatalf("%d groups after a confirmed empty import", n)
		}
		// Into an empty store nothing is removed.
		f.wrote(t, 200, "import", "POST", "/api/import", next)
	})
}
