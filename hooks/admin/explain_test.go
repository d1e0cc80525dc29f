package admin

import (
	"context"
	"slices"
	"testing"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// TestAdminExplain: GET /api/users/{id}/explain answers /policy's lists with
// why-chains and the stored profile, for a read-only key, on every backend.
func TestAdminExplain(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		for _, g := range []string{"parent", "child"} {
			f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": g, "name": "G " + g})
		}
		f.must(t, 204, "PATCH", "/api/groups/parent/nested", []string{"child"})
		f.must(t, 201, "POST", "/api/permissions", map[string]any{"_id": "p", "name": "do", "applicationType": "client", "applicationId": "app"})
		f.must(t, 201, "POST", "/api/roles", map[string]any{"_id": "r", "name": "doer", "applicationType": "client", "applicationId": "app", "permissions": []string{"p"}})
		f.must(t, 204, "PATCH", "/api/groups/parent/roles", []string{"r"})
		f.must(t, 204, "PATCH", "/api/groups/child/mappings", []map[string]string{{"groupName": "CORP\\eng", "connectionName": "ad"}})
		f.must(t, 204, "PATCH", "/api/groups/child/members", []string{"auth0|alice"})
		if _, err := f.store.PatchProfile(context.Background(), "auth0|alice", map[string]any{"plan": "gold"}, nil); err != nil {
			t.Fatal(err)
		}
		u := "/api/users/auth0%7Calice"
		var v radmin.UserView
		r := f.do(t, "GET", u+"/explain?client_id=app", f.read, nil)
		if r.status != 200 {
			t.Fatalf("read key: %d %s", r.status, r.body)
		}
		r.json(t, &v)
		var pol authz.Policy
		f.must(t, 200, "GET", u+"/policy?client_id=app", nil).json(t, &pol)
		if got := v.Policy(); !slices.Equal(got.Groups, pol.Groups) || !slices.Equal(got.Roles, pol.Roles) || !slices.Equal(got.Permissions, pol.Permissions) {
			t.Fatalf("explain %+v, policy %+v", got, pol)
		}
		if len(v.Roles) != 1 || v.Roles[0].Groups[0].ID != "parent" || len(v.Groups) != 2 ||
			!slices.Equal(v.Groups[0].Why[0].Path, []authz.Ref{{ID: "child", Name: "G child"}, {ID: "parent", Name: "G parent"}}) {
			t.Fatalf("why: %+v", v)
		}
		if v.Profile == nil || v.Profile.AppMetadata["plan"] != "gold" {
			t.Fatalf("profile: %+v", v.Profile)
		}
		// The IdP group maps onto child too: a second reason.
		f.must(t, 200, "GET", u+"/explain?client_id=app&connection=ad&groups=CORP%5Ceng,other", nil).json(t, &v)
		if w := v.Groups[1].Why; len(w) != 2 || w[1].Via != authz.ViaMapping || w[1].Mapping.GroupName != `CORP\eng` || w[1].Mapping.From != authz.FromIdP {
			t.Fatalf("mapping why: %+v", w)
		}
		f.fails(t, 400, "client_id", "GET", u+"/explain", nil)
	})
}
