package authz

import "slices"

// ResolveMembers answers q exactly as Resolve does, for a model that holds
// the structure only — groups, nesting, roles, permissions, mappings —
// while the user's memberships live elsewhere (the redis store keeps them in
// per-user index sets and reads them with the login's one round trip).
// groupIDs are the groups listing the user as a member, roleIDs the roles
// assigned to the user directly; unknown ids are ignored, as dangling ids
// are. m is not changed: the memberships go into a per-call view.
func (m *Model) ResolveMembers(q PolicyQuery, groupIDs, roleIDs []string) Policy {
	var gbuf, rbuf [32]int32
	direct := gbuf[:0]
	for _, id := range groupIDs {
		if i, ok := m.groupByID[id]; ok {
			direct = append(direct, i)
		}
	}
	roles := rbuf[:0]
	for _, id := range roleIDs {
		if i, ok := m.roleByID[id]; ok {
			roles = append(roles, i)
		}
	}
	// Resolve expects both lists in storage order without repeats.
	slices.Sort(direct)
	direct = slices.Compact(direct)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	view := *m
	view.users = map[string]int32{q.UserID: 0}
	view.userGroups = [][]int32{direct}
	view.userRoles = [][]int32{roles}
	return view.Resolve(q)
}
