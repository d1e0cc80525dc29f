package authz_test

import (
	"slices"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
)

// TestResolveMembers: a model without memberships, given the user's direct
// groups and roles, answers exactly as the full model does.
func TestResolveMembers(t *testing.T) {
	full := authztest.ResolutionFixture()
	m := authz.NewModel(full, 3)
	structure := full.DeepCopy()
	for i := range structure.Groups {
		structure.Groups[i].Members = nil
	}
	for i := range structure.Roles {
		structure.Roles[i].Users = nil
	}
	sm := authz.NewModel(structure, 3)
	for _, c := range authztest.ResolutionCases() {
		var groups, roles []string
		// Reversed and with an unknown id: order and dangling ids must not matter.
		for i := len(full.Groups) - 1; i >= 0; i-- {
			if slices.Contains(full.Groups[i].Members, c.Query.UserID) {
				groups = append(groups, full.Groups[i].ID, full.Groups[i].ID)
			}
		}
		for i := len(full.Roles) - 1; i >= 0; i-- {
			if slices.Contains(full.Roles[i].Users, c.Query.UserID) {
				roles = append(roles, full.Roles[i].ID)
			}
		}
		groups = append(groups, "no-such-group")
		got := sm.ResolveMembers(c.Query, groups, roles)
		want := m.Resolve(c.Query)
		if !slices.Equal(got.Groups, want.Groups) || !slices.Equal(got.Roles, want.Roles) || !slices.Equal(got.Permissions, want.Permissions) {
			t.Errorf("%s: ResolveMembers %+v, Resolve %+v", c.Name, got, want)
		}
	}
	// The structure model itself knows no members.
	if p := sm.Resolve(authztest.ResolutionCases()[0].Query); len(p.Groups) != 0 {
		t.Fatalf("structure model resolved groups without memberships: %+v", p)
	}
}
