package authz

import (
	"slices"
)

// PolicyQuery is what a login knows when it asks for a policy.
type PolicyQuery struct {
	UserID   string
	ClientID string
	// Audience is the API the token is for. Roles bound to it (applicationType
	// resource_server) apply too; empty gives exactly the extension's answer.
	Audience   string
	Connection string
	// IdPGroups are the groups the IdP connection reported for the user.
	IdPGroups []string
}

// Policy is a resolved answer: names, de-duplicated, in the extension's order.
type Policy struct {
	Groups      []string `json:"groups"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	// Revision is the store revision the policy was resolved at.
	Revision uint64 `json:"-"`
}

// Resolve answers q exactly as the extension's policy endpoint does
// (REFERENCE.md §1): direct groups ∪ groups mapped from the IdP groups and the
// direct groups' names (one pass, same connection only), plus every ancestor;
// roles of those groups then directly assigned roles, kept where the role's
// application is the client (or the audience, for resource_server roles);
// permissions of the kept roles. Lists are in storage order, de-duplicated by
// name. The cost depends on the user's memberships, not the model's size.
func (m *Model) Resolve(q PolicyQuery) Policy {
	var gbuf, rbuf, pbuf [64]int32
	groups := gbuf[:0]

	direct := m.userGroups[q.UserID]
	for _, g := range direct {
		groups = append(groups, m.ancestors[g]...)
	}
	if q.Connection != "" {
		if byName := m.mappings[q.Connection]; len(byName) > 0 {
			for _, label := range q.IdPGroups {
				for _, g := range byName[label] {
					groups = append(groups, m.ancestors[g]...)
				}
			}
			for _, d := range direct {
				for _, g := range byName[m.doc.Groups[d].Name] {
					groups = append(groups, m.ancestors[g]...)
				}
			}
		}
	}
	groups = sortUnique(groups)

	// Group-derived roles first, in role order; then directly assigned ones.
	roles := rbuf[:0]
	for _, g := range groups {
		for _, r := range m.groupRoles[g] {
			if m.roleApplies(r, q) {
				roles = append(roles, r)
			}
		}
	}
	roles = sortUnique(roles)
	// userRoles is sorted and unique; a role also derived from a group is
	// dropped by the name de-duplication below.
	for _, r := range m.userRoles[q.UserID] {
		if m.roleApplies(r, q) {
			roles = append(roles, r)
		}
	}

	perms := pbuf[:0]
	for _, r := range roles {
		perms = append(perms, m.rolePerms[r]...)
	}
	perms = sortUnique(perms)

	p := Policy{Revision: m.revision}
	p.Groups = uniqueNames(groups, func(i int32) string { return m.doc.Groups[i].Name })
	p.Roles = uniqueNames(roles, func(i int32) string { return m.doc.Roles[i].Name })
	p.Permissions = uniqueNames(perms, func(i int32) string { return m.doc.Permissions[i].Name })
	return p
}

func (m *Model) roleApplies(r int32, q PolicyQuery) bool {
	role := &m.doc.Roles[r]
	if role.ApplicationID == q.ClientID {
		return true
	}
	return q.Audience != "" && role.ApplicationType == TypeResourceServer && role.ApplicationID == q.Audience
}

func sortUnique(s []int32) []int32 {
	if len(s) < 2 {
		return s
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// uniqueNames maps indexes to names, keeping the first of equal names
// (case-sensitive, as the extension's de-duplication). A linear scan beats a
// map for the short lists a login produces; long lists switch to a set.
func uniqueNames(idx []int32, name func(int32) string) []string {
	out := make([]string, 0, len(idx))
	var seen map[string]struct{}
	if len(idx) > 64 {
		seen = make(map[string]struct{}, len(idx))
	}
	for _, i := range idx {
		n := name(i)
		if seen != nil {
			if _, dup := seen[n]; dup {
				continue
			}
			seen[n] = struct{}{}
		} else if slices.Contains(out, n) {
			continue
		}
		out = append(out, n)
	}
	return out
}
