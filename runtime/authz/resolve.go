package authz

import (
	"slices"

	"github.com/claimsmith/claimsmith/runtime"
)

// PolicyQuery is what a login knows when it asks for a policy. It is
// defined with the other login rules in runtime (runtime.LoginQuery builds
// it from an event), so the pipeline, the minter and introspection ask the
// same question.
type PolicyQuery = runtime.PolicyQuery

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

	ui, known := m.users[q.UserID]
	var direct, directRoles []int32
	if known {
		direct, directRoles = m.userGroups[ui], m.userRoles[ui]
	}
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
	// skipped here: the name de-duplication below does not run when every
	// role name is distinct, and the role would be listed twice.
	derived := roles
	for _, r := range directRoles {
		if _, dup := slices.BinarySearch(derived, r); !dup && m.roleApplies(r, q) {
			roles = append(roles, r)
		}
	}

	perms := pbuf[:0]
	for _, r := range roles {
		perms = append(perms, m.rolePerms[r]...)
	}
	perms = sortUnique(perms)

	// One allocation backs all three lists; each is capped so a caller's
	// append cannot run into the next.
	out := make([]string, 0, len(groups)+len(roles)+len(perms))
	p := Policy{Revision: m.revision}
	out, p.Groups = m.groupNames.appendUnique(out, groups)
	out, p.Roles = m.roleNames.appendUnique(out, roles)
	_, p.Permissions = m.permNames.appendUnique(out, perms)
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

// names maps an entity index to its name and to a name id (equal names,
// case-sensitive, share an id) so de-duplication compares integers.
type names struct {
	name []string
	id   []int32
	dups bool // false when all names are distinct: nothing to de-duplicate
}

func newNames(n int, name func(int) string) names {
	ns := names{name: make([]string, n), id: make([]int32, n)}
	ids := make(map[string]int32, n)
	for i := 0; i < n; i++ {
		nm := name(i)
		id, ok := ids[nm]
		if !ok {
			id = int32(len(ids))
			ids[nm] = id
		} else {
			ns.dups = true
		}
		ns.name[i], ns.id[i] = nm, id
	}
	return ns
}

// appendUnique appends the names of idx to out, keeping the first of equal
// names (the extension de-duplicates by name), and returns out and the
// appended part.
func (ns *names) appendUnique(out []string, idx []int32) ([]string, []string) {
	start := len(out)
	if !ns.dups {
		for _, i := range idx {
			out = append(out, ns.name[i])
		}
		return out, out[start:len(out):len(out)]
	}
	var buf [64]int32
	seen := buf[:0]
	var seenSet map[int32]struct{}
	if len(idx) > len(buf) {
		seenSet = make(map[int32]struct{}, len(idx))
	}
	for _, i := range idx {
		id := ns.id[i]
		if seenSet != nil {
			if _, dup := seenSet[id]; dup {
				continue
			}
			seenSet[id] = struct{}{}
		} else {
			if slices.Contains(seen, id) {
				continue
			}
			seen = append(seen, id)
		}
		out = append(out, ns.name[i])
	}
	return out, out[start:len(out):len(out)]
}
