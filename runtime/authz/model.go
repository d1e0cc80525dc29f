package authz

import (
	"slices"
)

// Model is an immutable, indexed snapshot of one Document revision. It is
// built once per revision (NewModel) so that a login costs only the user's own
// memberships, never a walk of the whole document: every group's ancestor
// closure, the user → direct groups and user → direct roles indexes and the
// mapping index are precomputed. Share a *Model freely between goroutines.
type Model struct {
	doc      *Document
	revision uint64

	groupByID map[string]int32
	roleByID  map[string]int32
	permByID  map[string]int32

	// ancestors[g] lists g and every group that (transitively) nests g, sorted
	// by storage order. Cycles are harmless: the closure is a set.
	ancestors [][]int32
	// parents[g] lists the groups that nest g directly (Explain walks them).
	parents [][]int32
	// groupRoles[g] and rolePerms[r] are the valid (non-dangling) references.
	groupRoles [][]int32
	rolePerms  [][]int32
	// users numbers every user id the document mentions; userGroups[u] and
	// userRoles[u] are user u's direct groups and directly assigned roles, in
	// storage order. One map lookup per login, one per membership at build.
	users      map[string]int32
	userGroups [][]int32
	userRoles  [][]int32
	// mappings[connection][groupName] lists the groups mapping that IdP group.
	mappings map[string]map[string][]int32
	// apps holds the registered applications by client id.
	apps map[string]Application
	// groupNames, roleNames and permNames serve name de-duplication.
	groupNames, roleNames, permNames names
}

// NewModel indexes doc. It does not validate doc (Validate does); dangling ids
// are ignored as the extension ignores them. doc must not be changed afterwards.
func NewModel(doc *Document, revision uint64) *Model {
	m := &Model{
		doc:        doc,
		revision:   revision,
		groupByID:  make(map[string]int32, len(doc.Groups)),
		roleByID:   make(map[string]int32, len(doc.Roles)),
		permByID:   make(map[string]int32, len(doc.Permissions)),
		groupRoles: make([][]int32, len(doc.Groups)),
		rolePerms:  make([][]int32, len(doc.Roles)),
		users:      map[string]int32{},
		mappings:   map[string]map[string][]int32{},
		apps:       map[string]Application{},
	}
	// First occurrence of an id wins, matching a lookup by _id in the extension.
	for i := range doc.Groups {
		if _, dup := m.groupByID[doc.Groups[i].ID]; !dup {
			m.groupByID[doc.Groups[i].ID] = int32(i)
		}
	}
	for i := range doc.Roles {
		if _, dup := m.roleByID[doc.Roles[i].ID]; !dup {
			m.roleByID[doc.Roles[i].ID] = int32(i)
		}
	}
	for i := range doc.Permissions {
		if _, dup := m.permByID[doc.Permissions[i].ID]; !dup {
			m.permByID[doc.Permissions[i].ID] = int32(i)
		}
	}

	parents := make([][]int32, len(doc.Groups))
	for gi := range doc.Groups {
		g := &doc.Groups[gi]
		for _, child := range g.Nested {
			if ci, ok := m.groupByID[child]; ok {
				parents[ci] = append(parents[ci], int32(gi))
			}
		}
		for _, rid := range g.Roles {
			if ri, ok := m.roleByID[rid]; ok {
				m.groupRoles[gi] = append(m.groupRoles[gi], ri)
			}
		}
		for _, u := range g.Members {
			ui := m.user(u)
			m.userGroups[ui] = appendUnique(m.userGroups[ui], int32(gi))
		}
		for _, mp := range g.Mappings {
			byName := m.mappings[mp.ConnectionName]
			if byName == nil {
				byName = map[string][]int32{}
				m.mappings[mp.ConnectionName] = byName
			}
			byName[mp.GroupName] = appendUnique(byName[mp.GroupName], int32(gi))
		}
	}
	for ri := range doc.Roles {
		r := &doc.Roles[ri]
		for _, pid := range r.Permissions {
			if pi, ok := m.permByID[pid]; ok {
				m.rolePerms[ri] = append(m.rolePerms[ri], pi)
			}
		}
		for _, u := range r.Users {
			ui := m.user(u)
			m.userRoles[ui] = appendUnique(m.userRoles[ui], int32(ri))
		}
	}
	m.ancestors, m.parents = closures(parents), parents
	m.groupNames = newNames(len(doc.Groups), func(i int) string { return doc.Groups[i].Name })
	m.roleNames = newNames(len(doc.Roles), func(i int) string { return doc.Roles[i].Name })
	m.permNames = newNames(len(doc.Permissions), func(i int) string { return doc.Permissions[i].Name })
	if doc.Claimsmith != nil {
		for _, a := range doc.Claimsmith.Applications {
			m.apps[a.ClientID] = a
		}
	}
	return m
}

// user returns the number of userID, adding it when new.
func (m *Model) user(userID string) int32 {
	if ui, ok := m.users[userID]; ok {
		return ui
	}
	ui := int32(len(m.userGroups))
	m.users[userID] = ui
	m.userGroups = append(m.userGroups, nil)
	m.userRoles = append(m.userRoles, nil)
	return ui
}

func (m *Model) directGroups(userID string) []int32 {
	if ui, ok := m.users[userID]; ok {
		return m.userGroups[ui]
	}
	return nil
}

// appendUnique appends v unless it is already the last element; callers add
// indexes in ascending order, so this de-duplicates.
func appendUnique(s []int32, v int32) []int32 {
	if n := len(s); n > 0 && s[n-1] == v {
		return s
	}
	return append(s, v)
}

// closures computes, for every group, itself plus all its ancestors, sorted.
// Iterative DFS with a visited mark per start: cycle-safe, O(groups × closure).
// Groups that share a parent chain share work through memoised results where
// the walk is acyclic; cycles fall back to the plain walk.
func closures(parents [][]int32) [][]int32 {
	n := len(parents)
	out := make([][]int32, n)
	mark := make([]int32, n) // mark[g] == start+1 when visited in this walk
	var stack []int32
	for start := 0; start < n; start++ {
		if len(parents[start]) == 0 {
			out[start] = []int32{int32(start)}
			continue
		}
		tag := int32(start + 1)
		acc := []int32{int32(start)}
		mark[start] = tag
		stack = append(stack[:0], parents[start]...)
		for len(stack) > 0 {
			g := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if mark[g] == tag {
				continue
			}
			mark[g] = tag
			acc = append(acc, g)
			stack = append(stack, parents[g]...)
		}
		slices.Sort(acc)
		out[start] = acc
	}
	return out
}

// Revision is the store revision this model was built from.
func (m *Model) Revision() uint64 { return m.revision }

// Document returns the document the model indexes. Callers must not change it.
func (m *Model) Document() *Document { return m.doc }

// Application returns a registered application by client id.
func (m *Model) Application(clientID string) (Application, bool) {
	a, ok := m.apps[clientID]
	return a, ok
}

// DirectGroups returns the ids of the groups that list userID as a member.
func (m *Model) DirectGroups(userID string) []string {
	idx := m.directGroups(userID)
	out := make([]string, len(idx))
	for i, g := range idx {
		out[i] = m.doc.Groups[g].ID
	}
	return out
}
