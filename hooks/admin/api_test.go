package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// wrote performs a write with the all-scopes key, checks its status, and
// checks that it produced exactly one audit record naming the key, the
// action and the revisions the ETag reports.
func (f *adminFixture) wrote(t *testing.T, want int, action, method, path string, body any, hdr ...string) adminResp {
	t.Helper()
	n := f.auditTotal(t)
	rev := f.revision(t)
	r := f.must(t, want, method, path, body, hdr...)
	if got := f.auditTotal(t); got != n+1 {
		t.Fatalf("%s %s: %d audit records written, want 1", method, path, got-n)
	}
	rec := f.lastAudit(t)
	if rec.Action != action || rec.KeyName != "root" || rec.KeyID == "" || rec.Time.IsZero() {
		t.Fatalf("%s %s: audit record %+v, want action %q by root", method, path, rec, action)
	}
	if rec.RevisionBefore != rev || rec.RevisionAfter != f.revision(t) || etagOf(rec.RevisionAfter) != r.header.Get("ETag") {
		t.Fatalf("%s %s: audit revisions %d→%d, store %d→%d, ETag %s", method, path, rec.RevisionBefore, rec.RevisionAfter, rev, f.revision(t), r.header.Get("ETag"))
	}
	return r
}

type listEnv[T any] struct {
	Total   int `json:"total"`
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
	Items   []T
}

// list GETs a list and returns its items (under key).
func list[T any](t *testing.T, f *adminFixture, path, key string) listEnv[T] {
	t.Helper()
	r := f.must(t, 200, "GET", path, nil)
	var raw map[string]json.RawMessage
	r.json(t, &raw)
	var env listEnv[T]
	r.json(t, &env)
	if err := json.Unmarshal(raw[key], &env.Items); err != nil || env.Items == nil {
		t.Fatalf("%s: no %q array in %s", path, key, r.body)
	}
	return env
}

func forEachStore(t *testing.T, fn func(t *testing.T, f *adminFixture)) {
	for _, kind := range adminStoreKinds {
		t.Run(kind, func(t *testing.T) { fn(t, newAdminFixtureOn(t, kind)) })
	}
}

func TestAdminAuthentication(t *testing.T) {
	f := newAdminFixture(t)
	g := f.must(t, 201, "POST", "/api/groups", map[string]any{"name": "Ops"})
	var grp authz.Group
	g.json(t, &grp)

	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		want                    int
	}{
		{"no key", "GET", "/api/groups", "", nil, 401},
		{"unknown key", "GET", "/api/groups", "csk_nope_nope", nil, 401},
		{"no key on a write, body not read", "POST", "/api/groups", "", "{not json", 401},
		{"write key cannot read", "GET", "/api/groups", f.write, nil, 403},
		{"read key cannot write", "POST", "/api/groups", f.read, map[string]any{"name": "X"}, 403},
		{"read key cannot delete", "DELETE", "/api/groups/" + grp.ID, f.read, nil, 403},
		{"read key cannot import", "POST", "/api/import", f.read, "{}", 403},
		{"write key cannot import", "POST", "/api/import", f.write, "{}", 403},
		{"read key cannot export", "GET", "/api/export", f.read, nil, 403},
		{"import key cannot export", "GET", "/api/export", f.imp, nil, 403},
		{"export key cannot read the audit", "GET", "/api/audit", f.exp, nil, 403},
		{"read key reads", "GET", "/api/groups/" + grp.ID, f.read, nil, 200},
		{"export key exports", "GET", "/api/export", f.exp, nil, 200},
		{"openapi needs no key", "GET", "/api/openapi.json", "", nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.revision(t)
			r := f.do(t, tc.method, tc.path, tc.key, tc.body)
			if r.status != tc.want {
				t.Fatalf("want %d, got %d %s", tc.want, r.status, r.body)
			}
			if tc.want == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without WWW-Authenticate: %v", r.header)
			}
			if tc.want == 403 && !strings.Contains(r.errText(), "scope") {
				t.Fatalf("403 does not name the scope: %s", r.body)
			}
			if f.revision(t) != before {
				t.Fatal("a refused request changed the store")
			}
		})
	}
	// A revoked key stops working at once.
	if err := f.keys.Revoke(t.Context(), "reader"); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "GET", "/api/groups", f.read, nil); r.status != 401 {
		t.Fatalf("revoked key: %d", r.status)
	}
}

func TestAdminGroups(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		r := f.wrote(t, 201, "group.create", "POST", "/api/groups", map[string]any{"name": "Engineering", "description": "all engineers"})
		var eng authz.Group
		r.json(t, &eng)
		if eng.ID == "" || eng.Name != "Engineering" || r.header.Get("Location") != "/api/groups/"+eng.ID {
			t.Fatalf("created %+v, Location %q", eng, r.header.Get("Location"))
		}
		rec := f.lastAudit(t)
		if rec.EntityID != eng.ID || rec.Before != nil || !bytes.Contains(rec.After, []byte(`"Engineering"`)) {
			t.Fatalf("audit of create: %+v", rec)
		}
		// A client-chosen _id makes a retried create a 409, not a duplicate.
		f.wrote(t, 201, "group.create", "POST", "/api/groups", map[string]any{"_id": "g-backend", "name": "Backend"})
		f.fails(t, 409, "g-backend", "POST", "/api/groups", map[string]any{"_id": "g-backend", "name": "Backend 2"})
		f.wrote(t, 201, "group.create", "POST", "/api/groups", map[string]any{"_id": "g-db", "name": "Databases"})

		// Validation: 400 naming the field, nothing changed.
		f.fails(t, 400, "name", "POST", "/api/groups", map[string]any{"name": ""})
		f.fails(t, 400, "name", "POST", "/api/groups", map[string]any{"name": strings.Repeat("x", 51)})
		f.fails(t, 400, "description", "POST", "/api/groups", map[string]any{"name": "ok", "description": strings.Repeat("d", 501)})
		f.fails(t, 400, "colour", "POST", "/api/groups", map[string]any{"name": "ok", "colour": "red"})
		f.fails(t, 400, "name", "POST", "/api/groups", map[string]any{"name": 42})
		f.fails(t, 400, "_id", "POST", "/api/groups", map[string]any{"_id": "", "name": "ok"})
		f.fails(t, 400, "JSON", "POST", "/api/groups", "{\"name\":")
		f.fails(t, 400, "body", "POST", "/api/groups", "")
		f.fails(t, 400, "after the JSON value", "POST", "/api/groups", `{"name":"a"}{"name":"b"}`)
		f.fails(t, 400, "body", "POST", "/api/groups", `["name"]`)
		// Names are unique case-insensitively (the extension's rule).
		f.fails(t, 409, "ENGINEERING", "POST", "/api/groups", map[string]any{"name": "ENGINEERING"})
		// 50 UTF-16 units is the limit, as JavaScript counts.
		f.wrote(t, 201, "group.create", "POST", "/api/groups", map[string]any{"_id": "g-long", "name": strings.Repeat("é", 50)})
		f.fails(t, 400, "name", "POST", "/api/groups", map[string]any{"name": strings.Repeat("😀", 26)})
		// Not JSON: 415.
		if r := f.do(t, "POST", "/api/groups", f.all, nil, "Content-Type", "text/plain"); r.status != 415 {
			t.Fatalf("no JSON content type: %d", r.status)
		}

		// Read, list, filter, page.
		var got authz.Group
		f.must(t, 200, "GET", "/api/groups/"+eng.ID, nil).json(t, &got)
		if got.Description != "all engineers" {
			t.Fatalf("get: %+v", got)
		}
		f.fails(t, 404, "nope", "GET", "/api/groups/nope", nil)
		all := list[authz.Group](t, f, "/api/groups", "groups")
		if all.Total != 4 || len(all.Items) != 4 || all.Items[0].Name != "Engineering" || all.PerPage != 100 {
			t.Fatalf("list: %+v", all)
		}
		if l := list[authz.Group](t, f, "/api/groups?q=END", "groups"); l.Total != 1 || l.Items[0].ID != "g-backend" {
			t.Fatalf("q filter: %+v", l)
		}
		if l := list[authz.Group](t, f, "/api/groups?name=databases", "groups"); l.Total != 1 || l.Items[0].ID != "g-db" {
			t.Fatalf("name filter: %+v", l)
		}
		if l := list[authz.Group](t, f, "/api/groups?q=engineers&field=description", "groups"); l.Total != 1 || l.Items[0].ID != eng.ID {
			t.Fatalf("description search: %+v", l)
		}
		if l := list[authz.Group](t, f, "/api/groups?page=1&per_page=3", "groups"); l.Total != 4 || len(l.Items) != 1 || l.Items[0].ID != "g-long" || l.Page != 1 {
			t.Fatalf("page 1: %+v", l)
		}
		if l := list[authz.Group](t, f, "/api/groups?page=9&per_page=3", "groups"); l.Total != 4 || len(l.Items) != 0 {
			t.Fatalf("page past the end: %+v", l)
		}
		f.fails(t, 400, "per_page", "GET", "/api/groups?per_page=0", nil)
		f.fails(t, 400, "per_page", "GET", "/api/groups?per_page=1001", nil)
		f.fails(t, 400, "page", "GET", "/api/groups?page=-1", nil)
		f.fails(t, 400, "field", "GET", "/api/groups?q=a&field=members", nil)

		// Update.
		r = f.wrote(t, 200, "group.update", "PUT", "/api/groups/"+eng.ID, map[string]any{"name": "Eng", "description": "renamed"})
		r.json(t, &got)
		if got.Name != "Eng" || got.Description != "renamed" {
			t.Fatalf("update: %+v", got)
		}
		rec = f.lastAudit(t)
		if !bytes.Contains(rec.Before, []byte(`"Engineering"`)) || !bytes.Contains(rec.After, []byte(`"Eng"`)) {
			t.Fatalf("audit before/after: %s / %s", rec.Before, rec.After)
		}
		f.fails(t, 409, "backend", "PUT", "/api/groups/"+eng.ID, map[string]any{"name": "backend"})
		f.fails(t, 404, "nope", "PUT", "/api/groups/nope", map[string]any{"name": "x"})
		f.fails(t, 400, "_id", "PUT", "/api/groups/"+eng.ID, map[string]any{"_id": "other", "name": "x"})
		f.fails(t, 400, "name", "PUT", "/api/groups/"+eng.ID, map[string]any{"description": "no name"})

		// Wrong method: JSON 405 with Allow.
		r = f.do(t, "PATCH", "/api/groups/"+eng.ID, f.all, "{}")
		if r.status != 405 || !strings.Contains(r.header.Get("Allow"), "PUT") || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("405: %d %v", r.status, r.header)
		}
		// Unknown path under /api/: JSON 404.
		if r := f.do(t, "GET", "/api/nothing", f.all, nil); r.status != 404 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("unknown path: %d", r.status)
		}

		// Delete: a nested group is in use (409) unless cascade.
		f.wrote(t, 204, "group.nested.add", "PATCH", "/api/groups/g-backend/nested", []string{"g-db"})
		f.fails(t, 409, "g-backend", "DELETE", "/api/groups/g-db", nil)
		f.fails(t, 400, "cascade", "DELETE", "/api/groups/g-db?cascade=perhaps", nil)
		f.wrote(t, 204, "group.delete", "DELETE", "/api/groups/g-db?cascade=true", nil)
		if rec := f.lastAudit(t); rec.After != nil || !bytes.Contains(rec.Before, []byte(`"Databases"`)) {
			t.Fatalf("audit of delete: %+v", rec)
		}
		if l := list[authz.Group](t, f, "/api/groups/g-backend/nested", "groups"); l.Total != 0 {
			t.Fatalf("cascade left the reference: %+v", l)
		}
		f.fails(t, 404, "g-db", "DELETE", "/api/groups/g-db", nil)
	})
}

func TestAdminGroupSubresources(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		for _, g := range []string{"top", "mid", "leaf", "other"} {
			f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": g, "name": strings.ToUpper(g)})
		}
		f.must(t, 201, "POST", "/api/permissions", map[string]any{"_id": "p1", "name": "read:x", "applicationType": "client", "applicationId": "app"})
		f.must(t, 201, "POST", "/api/roles", map[string]any{"_id": "r1", "name": "reader", "applicationType": "client", "applicationId": "app", "permissions": []string{"p1"}})
		f.must(t, 201, "POST", "/api/roles", map[string]any{"_id": "r2", "name": "top-role", "applicationType": "client", "applicationId": "app"})

		// Members.
		f.wrote(t, 204, "group.members.add", "PATCH", "/api/groups/leaf/members", []string{"u1", "u2"})
		f.wrote(t, 204, "group.members.add", "PATCH", "/api/groups/mid/members", []string{"u2", "u3"})
		f.wrote(t, 204, "group.members.add", "PATCH", "/api/groups/top/members", []string{"u4"})
		if l := list[userRef](t, f, "/api/groups/leaf/members", "users"); l.Total != 2 || l.Items[1].UserID != "u2" {
			t.Fatalf("members: %+v", l)
		}
		f.fails(t, 400, "members", "PATCH", "/api/groups/leaf/members", []string{})
		f.fails(t, 400, "members[1]", "PATCH", "/api/groups/leaf/members", []string{"u9", ""})
		f.fails(t, 400, "members", "PATCH", "/api/groups/leaf/members", map[string]any{"members": []string{"u9"}})
		f.fails(t, 400, "members", "PATCH", "/api/groups/leaf/members", "null")
		f.fails(t, 404, "nope", "PATCH", "/api/groups/nope/members", []string{"u1"})
		f.fails(t, 404, "nope", "GET", "/api/groups/nope/members", nil)

		// Nesting: top ⊃ mid ⊃ leaf. Self-nesting is refused; longer cycles
		// are allowed (documented) and stay harmless.
		f.wrote(t, 204, "group.nested.add", "PATCH", "/api/groups/top/nested", []string{"mid"})
		f.wrote(t, 204, "group.nested.add", "PATCH", "/api/groups/mid/nested", []string{"leaf"})
		f.fails(t, 400, "nest itself", "PATCH", "/api/groups/mid/nested", []string{"mid"})
		f.fails(t, 404, "ghost", "PATCH", "/api/groups/mid/nested", []string{"ghost"})
		if l := list[authz.Group](t, f, "/api/groups/top/nested", "groups"); l.Total != 1 || l.Items[0].ID != "mid" {
			t.Fatalf("nested: %+v", l)
		}

		// Effective members walk down through children, each user once.
		eff := list[nestedMember](t, f, "/api/groups/top/members/nested", "users")
		var ids []string
		for _, m := range eff.Items {
			ids = append(ids, m.User.UserID+"@"+m.Group.ID)
		}
		if strings.Join(ids, " ") != "u4@top u2@mid u3@mid u1@leaf" {
			t.Fatalf("effective members: %v", ids)
		}
		f.wrote(t, 204, "group.nested.add", "PATCH", "/api/groups/leaf/nested", []string{"top"}) // a cycle
		if l := list[nestedMember](t, f, "/api/groups/leaf/members/nested", "users"); l.Total != 4 {
			t.Fatalf("effective members with a cycle: %+v", l)
		}
		f.wrote(t, 204, "group.nested.remove", "DELETE", "/api/groups/leaf/nested", []string{"top"})

		// Roles of a group, and the roles members get through nesting.
		f.wrote(t, 204, "group.roles.add", "PATCH", "/api/groups/leaf/roles", []string{"r1"})
		f.wrote(t, 204, "group.roles.add", "PATCH", "/api/groups/top/roles", []string{"r2"})
		f.fails(t, 404, "ghost", "PATCH", "/api/groups/leaf/roles", []string{"ghost"})
		if l := list[authz.Role](t, f, "/api/groups/leaf/roles", "roles"); l.Total != 1 || l.Items[0].ID != "r1" {
			t.Fatalf("group roles: %+v", l)
		}
		if l := list[authz.Role](t, f, "/api/groups/leaf/roles/nested", "roles"); l.Total != 2 {
			t.Fatalf("nested roles: %+v", l)
		}
		f.fails(t, 409, "leaf", "DELETE", "/api/roles/r1", nil) // in use by a group

		// Mappings.
		f.wrote(t, 204, "group.mappings.add", "PATCH", "/api/groups/other/mappings",
			[]map[string]string{{"groupName": "Domain Admins", "connectionName": "corp-ad"}, {"groupName": "admins", "connectionName": "google"}})
		maps := list[authz.Mapping](t, f, "/api/groups/other/mappings", "mappings")
		if maps.Total != 2 || maps.Items[0].ID == "" || maps.Items[0].GroupName != "Domain Admins" {
			t.Fatalf("mappings: %+v", maps)
		}
		f.fails(t, 400, "connectionName", "PATCH", "/api/groups/other/mappings", []map[string]string{{"groupName": "x"}})
		f.fails(t, 400, "groupName", "PATCH", "/api/groups/other/mappings", []map[string]string{{"groupName": strings.Repeat("g", 51), "connectionName": "c"}})
		f.fails(t, 400, "mappings", "PATCH", "/api/groups/other/mappings", []map[string]string{})
		f.fails(t, 400, "extra", "PATCH", "/api/groups/other/mappings", []map[string]string{{"groupName": "x", "connectionName": "c", "extra": "y"}})
		f.wrote(t, 204, "group.mappings.remove", "DELETE", "/api/groups/other/mappings", []string{maps.Items[0].ID})
		if l := list[authz.Mapping](t, f, "/api/groups/other/mappings?q=admins", "mappings"); l.Total != 1 || l.Items[0].GroupName != "admins" {
			t.Fatalf("after removing a mapping: %+v", l)
		}

		// Removing members and roles; absent ones are ignored (retries succeed).
		f.wrote(t, 204, "group.members.remove", "DELETE", "/api/groups/leaf/members", []string{"u1", "absent"})
		f.wrote(t, 204, "group.roles.remove", "DELETE", "/api/groups/leaf/roles", []string{"r1"})
		if l := list[userRef](t, f, "/api/groups/leaf/members", "users"); l.Total != 1 {
			t.Fatalf("after remove: %+v", l)
		}
		f.wrote(t, 204, "role.delete", "DELETE", "/api/roles/r1", nil)
	})
}

func TestAdminRolesAndPermissions(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		r := f.wrote(t, 201, "permission.create", "POST", "/api/permissions",
			map[string]any{"name": "read:docs", "description": "read", "applicationType": "client", "applicationId": "portal"})
		var read authz.Permission
		r.json(t, &read)
		f.wrote(t, 201, "permission.create", "POST", "/api/permissions",
			map[string]any{"_id": "p-write", "name": "write:docs", "applicationType": "client", "applicationId": "portal"})
		f.wrote(t, 201, "permission.create", "POST", "/api/permissions",
			map[string]any{"_id": "p-api", "name": "read:api", "applicationType": "resource_server", "applicationId": "https://api.example.com/"})
		f.fails(t, 409, "read:docs", "POST", "/api/permissions", map[string]any{"name": "read:docs", "applicationType": "client", "applicationId": "portal"})
		f.wrote(t, 201, "permission.create", "POST", "/api/permissions", // same name, other application: fine
			map[string]any{"_id": "p-other", "name": "read:docs", "applicationType": "client", "applicationId": "reports"})
		f.fails(t, 400, "name", "POST", "/api/permissions", map[string]any{"name": strings.Repeat("p", 101), "applicationType": "client", "applicationId": "portal"})
		f.fails(t, 400, "applicationType", "POST", "/api/permissions", map[string]any{"name": "x", "applicationType": "api", "applicationId": "portal"})
		f.fails(t, 400, "applicationId", "POST", "/api/permissions", map[string]any{"name": "x", "applicationType": "client"})

		r = f.wrote(t, 201, "role.create", "POST", "/api/roles", map[string]any{"_id": "r-editor", "name": "editor",
			"applicationType": "client", "applicationId": "portal", "permissions": []string{read.ID, "p-write"}})
		var role authz.Role
		r.json(t, &role)
		if len(role.Permissions) != 2 || r.header.Get("Location") != "/api/roles/r-editor" {
			t.Fatalf("role: %+v", role)
		}
		f.wrote(t, 201, "role.create", "POST", "/api/roles", map[string]any{"_id": "r-api", "name": "api-reader",
			"applicationType": "resource_server", "applicationId": "https://api.example.com/", "permissions": []string{"p-api"}})
		f.fails(t, 409, "editor", "POST", "/api/roles", map[string]any{"name": "editor", "applicationType": "client", "applicationId": "portal"})
		f.fails(t, 404, "ghost", "POST", "/api/roles", map[string]any{"name": "x", "applicationType": "client", "applicationId": "portal", "permissions": []string{"ghost"}})
		f.fails(t, 400, "name", "POST", "/api/roles", map[string]any{"name": strings.Repeat("r", 51), "applicationType": "client", "applicationId": "portal"})
		f.fails(t, 400, "permissions", "POST", "/api/roles", map[string]any{"name": "x", "applicationType": "client", "applicationId": "portal", "permissions": "p-write"})

		// Filters by application.
		if l := list[authz.Role](t, f, "/api/roles?applicationId=portal", "roles"); l.Total != 1 || l.Items[0].ID != "r-editor" {
			t.Fatalf("roles of portal: %+v", l)
		}
		if l := list[authz.Permission](t, f, "/api/permissions?applicationType=resource_server", "permissions"); l.Total != 1 || l.Items[0].ID != "p-api" {
			t.Fatalf("API permissions: %+v", l)
		}
		if l := list[authz.Permission](t, f, "/api/permissions?name=READ:DOCS", "permissions"); l.Total != 2 {
			t.Fatalf("name filter: %+v", l)
		}
		if l := list[authz.Permission](t, f, "/api/roles/r-editor/permissions", "permissions"); l.Total != 2 {
			t.Fatalf("role permissions: %+v", l)
		}

		// Update: permissions replaced when given, kept when absent.
		f.wrote(t, 200, "role.update", "PUT", "/api/roles/r-editor", map[string]any{"name": "Editor", "applicationType": "client", "applicationId": "portal"})
		var got authz.Role
		f.must(t, 200, "GET", "/api/roles/r-editor", nil).json(t, &got)
		if got.Name != "Editor" || len(got.Permissions) != 2 {
			t.Fatalf("update kept permissions? %+v", got)
		}
		f.wrote(t, 200, "role.update", "PUT", "/api/roles/r-editor", map[string]any{"name": "Editor", "applicationType": "client", "applicationId": "portal", "permissions": []string{"p-write"}})
		f.must(t, 200, "GET", "/api/roles/r-editor", nil).json(t, &got)
		if !slices.Equal(got.Permissions, []string{"p-write"}) {
			t.Fatalf("permissions not replaced: %+v", got)
		}
		f.wrote(t, 204, "role.permissions.add", "PATCH", "/api/roles/r-editor/permissions", []string{read.ID})
		f.fails(t, 404, "ghost", "PATCH", "/api/roles/r-editor/permissions", []string{"ghost"})
		f.wrote(t, 204, "role.permissions.remove", "DELETE", "/api/roles/r-editor/permissions", []string{read.ID})

		// Direct users.
		f.wrote(t, 204, "role.users.add", "PATCH", "/api/roles/r-editor/users", []string{"auth0|alice", "auth0|bob"})
		if l := list[userRef](t, f, "/api/roles/r-editor/users", "users"); l.Total != 2 {
			t.Fatalf("role users: %+v", l)
		}
		f.wrote(t, 204, "role.users.remove", "DELETE", "/api/roles/r-editor/users", []string{"auth0|bob"})
		f.fails(t, 400, "users", "PATCH", "/api/roles/r-editor/users", []string{})
		f.fails(t, 404, "ghost", "GET", "/api/roles/ghost/users", nil)

		// Permissions: update, in use, cascade.
		f.wrote(t, 200, "permission.update", "PUT", "/api/permissions/p-write", map[string]any{"name": "write:all", "applicationType": "client", "applicationId": "portal"})
		f.fails(t, 409, "r-editor", "DELETE", "/api/permissions/p-write", nil)
		f.wrote(t, 204, "permission.delete", "DELETE", "/api/permissions/p-write?cascade=true", nil)
		got = authz.Role{}
		f.must(t, 200, "GET", "/api/roles/r-editor", nil).json(t, &got)
		if len(got.Permissions) != 0 {
			t.Fatalf("cascade left the reference: %+v", got)
		}
		f.fails(t, 404, "p-write", "GET", "/api/permissions/p-write", nil)
		f.wrote(t, 204, "role.delete", "DELETE", "/api/roles/r-api", nil)
		f.fails(t, 404, "r-api", "DELETE", "/api/roles/r-api", nil)
	})
}

func TestAdminApplications(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		r := f.wrote(t, 201, "application.create", "POST", "/api/applications",
			map[string]any{"client_id": "portal", "name": "Portal", "metadata": map[string]string{"required_roles": "editor,admin"}})
		var app authz.Application
		r.json(t, &app)
		if app.Metadata["required_roles"] != "editor,admin" || r.header.Get("Location") != "/api/applications/portal" {
			t.Fatalf("app %+v", app)
		}
		f.fails(t, 409, "portal", "POST", "/api/applications", map[string]any{"client_id": "portal"})
		f.fails(t, 400, "client_id", "POST", "/api/applications", map[string]any{"name": "x"})
		f.fails(t, 400, "metadata", "POST", "/api/applications", map[string]any{"client_id": "x", "metadata": map[string]any{"n": 1}})
		f.fails(t, 400, "metadata", "POST", "/api/applications", map[string]any{"client_id": "x", "metadata": map[string]any{" ": "v"}})
		f.fails(t, 400, "name", "POST", "/api/applications", map[string]any{"client_id": "x", "name": strings.Repeat("n", 201)})

		f.wrote(t, 200, "application.update", "PUT", "/api/applications/portal", map[string]any{"name": "Portal 2"})
		app = authz.Application{}
		f.must(t, 200, "GET", "/api/applications/portal", nil).json(t, &app)
		if app.Name != "Portal 2" || app.Metadata != nil {
			t.Fatalf("PUT replaces: %+v", app)
		}
		f.wrote(t, 201, "application.create", "PUT", "/api/applications/reports", map[string]any{"client_id": "reports", "name": "Reports"})
		f.fails(t, 400, "client_id", "PUT", "/api/applications/reports", map[string]any{"client_id": "other"})
		if l := list[authz.Application](t, f, "/api/applications?q=port", "applications"); l.Total != 2 {
			t.Fatalf("search matches name or client_id: %+v", l)
		}
		if l := list[authz.Application](t, f, "/api/applications?name=reports", "applications"); l.Total != 1 {
			t.Fatalf("name filter: %+v", l)
		}
		f.wrote(t, 204, "application.delete", "DELETE", "/api/applications/reports", nil)
		f.fails(t, 404, "reports", "DELETE", "/api/applications/reports", nil)
		f.fails(t, 404, "reports", "GET", "/api/applications/reports", nil)
	})
}

func TestAdminUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		for _, g := range []string{"parent", "child", "solo"} {
			f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": g, "name": "G " + g})
		}
		f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "dup1", "name": "Twin"})
		f.must(t, 204, "PATCH", "/api/groups/parent/nested", []string{"child"})
		f.must(t, 201, "POST", "/api/permissions", map[string]any{"_id": "p", "name": "do", "applicationType": "client", "applicationId": "app"})
		f.must(t, 201, "POST", "/api/roles", map[string]any{"_id": "r-parent", "name": "parent-role", "applicationType": "client", "applicationId": "app", "permissions": []string{"p"}})
		f.must(t, 201, "POST", "/api/roles", map[string]any{"_id": "r-direct", "name": "direct-role", "applicationType": "client", "applicationId": "other"})
		f.must(t, 204, "PATCH", "/api/groups/parent/roles", []string{"r-parent"})
		u := "/api/users/" + "auth0%7Calice"

		// Add by id and, as the extension allows, by exact name.
		f.wrote(t, 204, "user.groups.add", "PATCH", u+"/groups", []string{"child", "G solo"})
		if rec := f.lastAudit(t); rec.EntityID != "auth0|alice" || !bytes.Contains(rec.After, []byte(`"child"`)) {
			t.Fatalf("audit of user.groups.add: %+v", rec)
		}
		f.fails(t, 404, "G nowhere", "PATCH", u+"/groups", []string{"G nowhere"})
		f.fails(t, 400, "groups", "PATCH", u+"/groups", []string{})
		direct := list[groupRef](t, f, u+"/groups", "groups")
		if direct.Total != 2 || direct.Items[0].ID != "child" || direct.Items[1].ID != "solo" {
			t.Fatalf("direct groups: %+v", direct)
		}
		eff := list[groupRef](t, f, u+"/groups/calculate", "groups")
		if eff.Total != 3 || eff.Items[0].ID != "parent" {
			t.Fatalf("effective groups: %+v", eff)
		}

		// Roles: direct, effective, policy for a client.
		f.wrote(t, 204, "user.roles.add", "PATCH", u+"/roles", []string{"r-direct"})
		f.fails(t, 404, "ghost", "PATCH", u+"/roles", []string{"ghost"})
		if l := list[roleView](t, f, u+"/roles", "roles"); l.Total != 1 || l.Items[0].ID != "r-direct" {
			t.Fatalf("direct roles: %+v", l)
		}
		if l := list[roleView](t, f, u+"/roles/calculate", "roles"); l.Total != 2 {
			t.Fatalf("effective roles: %+v", l)
		}
		if l := list[roleView](t, f, u+"/roles/calculate?applicationId=app", "roles"); l.Total != 1 || l.Items[0].ID != "r-parent" {
			t.Fatalf("effective roles of app: %+v", l)
		}
		var pol authz.Policy
		f.must(t, 200, "GET", u+"/policy?client_id=app", nil).json(t, &pol)
		if !slices.Equal(pol.Groups, []string{"G parent", "G child", "G solo"}) || !slices.Equal(pol.Roles, []string{"parent-role"}) || !slices.Equal(pol.Permissions, []string{"do"}) {
			t.Fatalf("policy: %+v", pol)
		}
		f.fails(t, 400, "client_id", "GET", u+"/policy", nil)

		// Removing a user from groups (the extension could not).
		f.wrote(t, 204, "user.groups.remove", "DELETE", u+"/groups", []string{"child"})
		if l := list[groupRef](t, f, u+"/groups/calculate", "groups"); l.Total != 1 || l.Items[0].ID != "solo" {
			t.Fatalf("after removal: %+v", l)
		}
		f.fails(t, 400, "all=true", "DELETE", u+"/groups", []string{})
		f.fails(t, 400, "all", "DELETE", u+"/groups?all=maybe", nil)
		f.must(t, 204, "PATCH", u+"/groups", []string{"parent", "dup1"})
		f.wrote(t, 204, "user.groups.remove", "DELETE", u+"/groups?all=true", nil)
		if l := list[groupRef](t, f, u+"/groups", "groups"); l.Total != 0 {
			t.Fatalf("after removal from all: %+v", l)
		}
		f.wrote(t, 204, "user.roles.remove", "DELETE", u+"/roles", []string{"r-direct"})
		if l := list[roleView](t, f, u+"/roles/calculate", "roles"); l.Total != 0 {
			t.Fatalf("roles after removals: %+v", l)
		}
	})
}

func TestAdminETags(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		r := f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g", "name": "G"})
		tag := r.header.Get("ETag")
		if tag != etagOf(f.revision(t)) {
			t.Fatalf("ETag %q, store at %d", tag, f.revision(t))
		}
		r = f.must(t, 200, "GET", "/api/groups/g", nil)
		if r.header.Get("ETag") != tag {
			t.Fatalf("GET ETag %q, want %q", r.header.Get("ETag"), tag)
		}
		// Not modified.
		if r := f.do(t, "GET", "/api/groups/g", f.all, nil, "If-None-Match", tag); r.status != 304 || len(r.body) != 0 {
			t.Fatalf("If-None-Match: %d", r.status)
		}
		// Someone else changes the store: the stale If-Match is a 409 and
		// changes nothing.
		f.must(t, 201, "POST", "/api/groups", map[string]any{"name": "Other"})
		r = f.fails(t, 409, "revision", "PUT", "/api/groups/g", map[string]any{"name": "Mine"}, "If-Match", tag)
		f.must(t, 200, "GET", "/api/groups/g", nil).json(t, &authz.Group{})
		var g authz.Group
		f.must(t, 200, "GET", "/api/groups/g", nil).json(t, &g)
		if g.Name != "G" {
			t.Fatalf("a 409 changed the group: %+v", g)
		}
		f.fails(t, 409, "revision", "PATCH", "/api/groups/g/members", []string{"u"}, "If-Match", tag)
		f.fails(t, 409, "revision", "DELETE", "/api/groups/g", nil, "If-Match", tag)
		// With the current ETag the write goes through.
		cur := f.must(t, 200, "GET", "/api/groups", nil).header.Get("ETag")
		f.wrote(t, 200, "group.update", "PUT", "/api/groups/g", map[string]any{"name": "Mine"}, "If-Match", cur)
		f.wrote(t, 204, "group.members.add", "PATCH", "/api/groups/g/members", []string{"u"}, "If-Match", "*")
		f.fails(t, 400, "If-Match", "PUT", "/api/groups/g", map[string]any{"name": "x"}, "If-Match", "abc")
		f.fails(t, 400, "If-Match", "PUT", "/api/groups/g", map[string]any{"name": "x"}, "If-Match", `"1", "2"`)
		// Import honours If-Match too.
		doc := `{"configuration":[],"groups":[],"roles":[],"permissions":[]}`
		f.fails(t, 409, "revision", "POST", "/api/import", doc, "If-Match", tag)
	})
}

// TestAdminConcurrentWrites: many writers without If-Match never lose an
// update (a write that loses a race is rebuilt on a fresh snapshot), and
// each write is audited once.
func TestAdminConcurrentWrites(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g", "name": "G"})
		n0 := f.auditTotal(t)
		const writers = 20
		errs := make(chan error, writers)
		for i := range writers {
			go func() {
				r := f.do(t, "PATCH", "/api/groups/g/members", f.all, []string{fmt.Sprintf("u%d", i)})
				if r.status != 204 {
					errs <- fmt.Errorf("writer %d: %d %s", i, r.status, r.body)
					return
				}
				errs <- nil
			}()
		}
		for range writers {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if l := list[userRef](t, f, "/api/groups/g/members", "users"); l.Total != writers {
			t.Fatalf("lost updates: %d members", l.Total)
		}
		if n := f.auditTotal(t) - n0; n != writers {
			t.Fatalf("%d audit records for %d writes", n, writers)
		}
	})
}

func TestAdminAuditEndpoint(t *testing.T) {
	f := newAdminFixture(t)
	for i := range 5 {
		f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": fmt.Sprint("g", i), "name": fmt.Sprint("G", i)})
	}
	f.must(t, 204, "DELETE", "/api/groups/g0", nil)
	var page struct {
		Records []struct {
			Seq            uint64          `json:"seq"`
			KeyName        string          `json:"key_name"`
			Action         string          `json:"action"`
			EntityID       string          `json:"entity_id"`
			RevisionBefore uint64          `json:"revision_before"`
			RevisionAfter  uint64          `json:"revision_after"`
			Before         json.RawMessage `json:"before,omitempty"`
			After          json.RawMessage `json:"after,omitempty"`
		} `json:"records"`
		Total, Page, PerPage int
	}
	f.must(t, 200, "GET", "/api/audit?per_page=2", nil).json(t, &page)
	if page.Total != 6 || len(page.Records) != 2 || page.Records[0].Action != "group.delete" || page.Records[0].Seq != 6 ||
		page.Records[0].KeyName != "root" || page.Records[0].EntityID != "g0" || page.Records[0].RevisionAfter != page.Records[0].RevisionBefore+1 {
		t.Fatalf("audit page 0: %+v", page)
	}
	f.must(t, 200, "GET", "/api/audit?per_page=2&page=2", nil).json(t, &page)
	if len(page.Records) != 2 || page.Records[1].Seq != 1 || page.Records[1].Before != nil {
		t.Fatalf("audit page 2: %+v", page)
	}
	f.must(t, 200, "GET", "/api/audit?entity_id=g3", nil).json(t, &page)
	if page.Total != 1 || page.Records[0].EntityID != "g3" {
		t.Fatalf("audit filter: %+v", page)
	}
	f.must(t, 200, "GET", "/api/audit?action=group.delete&key=root", nil).json(t, &page)
	if page.Total != 1 {
		t.Fatalf("audit filter: %+v", page)
	}
	f.fails(t, 400, "per_page", "GET", "/api/audit?per_page=x", nil)
	// The caller's request id is kept when it is a safe token, replaced otherwise.
	f.must(t, 201, "POST", "/api/groups", map[string]any{"name": "Traced"}, "X-Request-Id", "req-42")
	if rec := f.lastAudit(t); rec.RequestID != "req-42" {
		t.Fatalf("request id %q", rec.RequestID)
	}
	f.must(t, 201, "POST", "/api/groups", map[string]any{"name": "Traced 2"}, "X-Request-Id", "evil\u2028"+strings.Repeat("x", 200))
	if rec := f.lastAudit(t); len(rec.RequestID) != 32 {
		t.Fatalf("unsafe request id kept: %q", rec.RequestID)
	}
	// Reads are not audited.
	if f.auditTotal(t) != 8 {
		t.Fatalf("reads were audited: %d", f.auditTotal(t))
	}
}

// canonical re-encodes JSON with sorted keys and no insignificant space.
func canonical(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestAdminImportExportSample(t *testing.T) {
	sample, err := os.ReadFile("../../samples/data/extension-export.json")
	if err != nil {
		t.Fatal(err)
	}
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		// An application registered before the import survives it (an
		// extension export has no claimsmith section).
		f.must(t, 201, "POST", "/api/applications", map[string]any{"client_id": "kept"})
		r := f.wrote(t, 200, "import", "POST", "/api/import", sample)
		var sum importSummary
		r.json(t, &sum)
		doc, err := authz.ParseDocument(sample)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Groups != len(doc.Groups) || sum.Roles != len(doc.Roles) || sum.Permissions != len(doc.Permissions) || sum.Applications != 1 || sum.Revision != f.revision(t) {
			t.Fatalf("summary %+v", sum)
		}
		if rec := f.lastAudit(t); !bytes.Contains(rec.After, []byte(fmt.Sprintf(`"groups":%d`, len(doc.Groups)))) {
			t.Fatalf("import audit after: %s", rec.After)
		}
		// Exports back identically: the same JSON, and (the sample being in
		// the extension's export layout) the same bytes.
		out := f.do(t, "GET", "/api/export", f.exp, nil)
		if out.status != 200 || out.header.Get("ETag") != etagOf(f.revision(t)) {
			t.Fatalf("export: %d", out.status)
		}
		if canonical(t, out.body) != canonical(t, sample) {
			t.Fatalf("export differs from the imported sample:\n%s", out.body)
		}
		if !bytes.Equal(out.body, sample) {
			t.Fatal("export equals the sample after canonical formatting but not byte for byte")
		}
		// A full export carries the applications; re-importing it is a no-op.
		full := f.must(t, 200, "GET", "/api/export?full=true", nil)
		if !bytes.Contains(full.body, []byte(`"kept"`)) {
			t.Fatalf("full export lacks applications: %s", full.body)
		}
		f.wrote(t, 200, "import", "POST", "/api/import", full.body)
		if again := f.must(t, 200, "GET", "/api/export?full=true", nil); canonical(t, again.body) != canonical(t, full.body) {
			t.Fatal("full export did not round-trip")
		}

		// A bad document is refused whole, naming the entity and field,
		// and changes nothing.
		bad := strings.Replace(string(sample), `"name": "`, `"name": "`+strings.Repeat("x", 60), 1)
		f.fails(t, 400, "name", "POST", "/api/import", bad)
		f.fails(t, 400, "unknown top-level key", "POST", "/api/import", `{"groups":[],"extra":1}`)
		f.fails(t, 400, "document", "POST", "/api/import", `[]`)
		f.fails(t, 400, "_id", "POST", "/api/import", `{"groups":[{"name":"a"}]}`)
		if r := f.do(t, "POST", "/api/import", f.imp, strings.Repeat(" ", 5<<20)); r.status != 413 {
			t.Fatalf("oversized import: %d", r.status)
		}
		if canonical(t, f.do(t, "GET", "/api/export", f.exp, nil).body) != canonical(t, sample) {
			t.Fatal("a refused import changed the document")
		}
		// The extension's paths do the same.
		if r := f.do(t, "POST", "/api/configuration/import", f.imp, sample); r.status != 200 {
			t.Fatalf("extension import path: %d %s", r.status, r.body)
		}
		if r := f.do(t, "GET", "/api/configuration/export", f.exp, nil); r.status != 200 || !bytes.Equal(r.body, out.body) {
			t.Fatalf("extension export path: %d", r.status)
		}
		// Import with only the import scope works; it is audited with that key.
		f.must(t, 200, "GET", "/api/groups", nil)
		if r := f.do(t, "POST", "/api/import", f.imp, sample); r.status != 200 {
			t.Fatalf("import key: %d %s", r.status, r.body)
		}
		if rec := f.lastAudit(t); rec.KeyName != "importer" || rec.Action != "import" {
			t.Fatalf("import audit: %+v", rec)
		}
	})
}

func TestAdminImportReplacesAndKeepsIDs(t *testing.T) {
	f := newAdminFixture(t)
	f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "old", "name": "Old"})
	doc := `{"configuration":[{"_id":"v1","groupsInToken":true}],"groups":[{"_id":"g1","name":"New","members":["u1"]}],"roles":[],"permissions":[]}`
	f.must(t, 200, "POST", "/api/import?replace=true", doc)
	f.fails(t, 404, "old", "GET", "/api/groups/old", nil)
	var g authz.Group
	f.must(t, 200, "GET", "/api/groups/g1", nil).json(t, &g)
	if g.Name != "New" || !slices.Equal(g.Members, []string{"u1"}) {
		t.Fatalf("imported group %+v", g)
	}
	if r := f.do(t, "POST", "/api/import", f.all, doc, "Content-Type", "text/plain"); r.status != 415 {
		t.Fatalf("import without JSON content type: %d", r.status)
	}
	_ = http.StatusOK
}
