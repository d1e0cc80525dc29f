package authz

import (
	"slices"
	"strings"
)

// Explain answers "why does this user get what they get": the same question
// as Resolve, with every effective group, role and permission carrying the
// reasons it is there. It walks exactly the indexes Resolve walks (direct
// groups, the mapping index, the nesting graph, group roles, direct roles,
// role permissions), so its effective lists name what Resolve answers
// (Explanation.Policy equals Resolve's lists) and its cost, like Resolve's,
// depends on the user's memberships, not on the model's size.

// Ref names an entity by _id and name.
type Ref struct {
	ID   string `json:"_id"`
	Name string `json:"name"`
}

// Why a group is effective (GroupGrant.Why).
const (
	// ViaMember: the user is listed in Path[0]'s members.
	ViaMember = "member"
	// ViaMapping: Path[0] maps an IdP group of the login's connection.
	ViaMapping = "mapping"
)

// Where a mapping's label came from (MappingWhy.From).
const (
	// FromIdP: the IdP reported the group for this login.
	FromIdP = "idp"
	// FromGroup: the label is the name of one of the user's direct groups
	// (the extension matches those names too).
	FromGroup = "group"
)

// MappingWhy is the IdP-group mapping that put the user into a group.
type MappingWhy struct {
	ID         string `json:"_id"`
	Connection string `json:"connectionName"`
	GroupName  string `json:"groupName"`
	From       string `json:"from"`
	// FromGroup is the direct group whose name matched (From == FromGroup).
	FromGroup *Ref `json:"from_group,omitempty"`
}

// GroupWhy is one reason a group is effective: the user is in Path[0]
// (by membership or mapping) and each next group nests the one before; the
// last is the effective group itself. Path is a shortest such chain.
type GroupWhy struct {
	Via     string      `json:"via"`
	Path    []Ref       `json:"path"`
	Mapping *MappingWhy `json:"mapping,omitempty"`
}

// GroupGrant is an effective group with every reason it is effective, direct
// memberships first, then mappings.
type GroupGrant struct {
	Ref
	Why []GroupWhy `json:"why"`
}

// RoleGrant is an effective role: carried by the listed effective groups
// (storage order), assigned directly, or both.
type RoleGrant struct {
	Ref
	ApplicationType string `json:"applicationType,omitempty"`
	ApplicationID   string `json:"applicationId"`
	Groups          []Ref  `json:"groups,omitempty"`
	Direct          bool   `json:"direct,omitempty"`
}

// PermissionGrant is an effective permission and the effective roles that
// grant it.
type PermissionGrant struct {
	Ref
	ApplicationType string `json:"applicationType,omitempty"`
	ApplicationID   string `json:"applicationId,omitempty"`
	Roles           []Ref  `json:"roles"`
}

// DirectRole is a role assigned to the user directly, for any application;
// Applies says whether the login's client or audience gets it.
type DirectRole struct {
	Ref
	ApplicationType string `json:"applicationType,omitempty"`
	ApplicationID   string `json:"applicationId"`
	Applies         bool   `json:"applies"`
}

// Step is one link of a why-chain, read left to right:
// member(Group) → nested(Parent)… → role(Role) → permission(Permission).
type Step struct {
	// Kind is member, idp-group, mapping, nested, role, direct-role or
	// permission.
	Kind string `json:"kind"`
	Ref
	// Detail is the connection of an idp-group or mapping step.
	Detail string `json:"detail,omitempty"`
}

// Explanation is the answer of Explain. Lists are in the order Resolve
// answers; entities with equal names are all listed (Resolve names them
// once; Policy does the same).
type Explanation struct {
	Query    PolicyQuery `json:"-"`
	Revision uint64      `json:"revision"`
	// DirectGroups list the groups whose members include the user.
	DirectGroups []Ref `json:"direct_groups"`
	// DirectRoles list every role assigned to the user directly.
	DirectRoles []DirectRole      `json:"direct_roles"`
	Groups      []GroupGrant      `json:"groups"`
	Roles       []RoleGrant       `json:"roles"`
	Permissions []PermissionGrant `json:"permissions"`
}

// Explain resolves q as Resolve does and records why.
func (m *Model) Explain(q PolicyQuery) Explanation {
	e := Explanation{Query: q, Revision: m.revision, DirectGroups: []Ref{}, DirectRoles: []DirectRole{},
		Groups: []GroupGrant{}, Roles: []RoleGrant{}, Permissions: []PermissionGrant{}}
	var direct, directRoles []int32
	if ui, ok := m.users[q.UserID]; ok {
		direct, directRoles = m.userGroups[ui], m.userRoles[ui]
	}
	for _, d := range direct {
		e.DirectGroups = append(e.DirectGroups, m.groupRef(d))
	}
	for _, r := range directRoles {
		role := &m.doc.Roles[r]
		e.DirectRoles = append(e.DirectRoles, DirectRole{Ref: Ref{role.ID, role.Name}, ApplicationType: role.ApplicationType,
			ApplicationID: role.ApplicationID, Applies: m.roleApplies(r, q)})
	}

	// Sources: the groups the user is in before nesting, in Resolve's order
	// (direct, then mapped from IdP groups, then mapped from direct names).
	type source struct {
		g       int32
		mapping *MappingWhy
	}
	sources := make([]source, 0, len(direct))
	for _, d := range direct {
		sources = append(sources, source{g: d})
	}
	if q.Connection != "" {
		if byName := m.mappings[q.Connection]; len(byName) > 0 {
			for _, label := range q.IdPGroups {
				for _, g := range byName[label] {
					sources = append(sources, source{g, m.mappingWhy(g, q.Connection, label, FromIdP, nil)})
				}
			}
			for _, d := range direct {
				name := m.doc.Groups[d].Name
				for _, g := range byName[name] {
					from := m.groupRef(d)
					sources = append(sources, source{g, m.mappingWhy(g, q.Connection, name, FromGroup, &from)})
				}
			}
		}
	}

	// Walk up from every source; each reached group gets the shortest path.
	why := map[int32][]GroupWhy{}
	for _, s := range sources {
		via := ViaMember
		if s.mapping != nil {
			via = ViaMapping
		}
		for g, path := range m.upward(s.g) {
			w := GroupWhy{Via: via, Path: path, Mapping: s.mapping}
			if !slices.ContainsFunc(why[g], func(o GroupWhy) bool { return sameWhy(o, w) }) {
				why[g] = append(why[g], w)
			}
		}
	}
	groups := make([]int32, 0, len(why))
	for g := range why {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for _, g := range groups {
		e.Groups = append(e.Groups, GroupGrant{Ref: m.groupRef(g), Why: why[g]})
	}

	// Roles: group-derived in role order, then direct ones not yet listed.
	var roles []int32
	viaGroups := map[int32][]Ref{}
	for _, g := range groups {
		for _, r := range m.groupRoles[g] {
			if !m.roleApplies(r, q) {
				continue
			}
			if refs := viaGroups[r]; len(refs) == 0 || refs[len(refs)-1].ID != m.doc.Groups[g].ID {
				viaGroups[r] = append(refs, m.groupRef(g))
			}
			roles = append(roles, r)
		}
	}
	roles = sortUnique(roles)
	isDirect := map[int32]bool{}
	for _, r := range directRoles {
		if m.roleApplies(r, q) {
			isDirect[r] = true
			if _, derived := viaGroups[r]; !derived {
				roles = append(roles, r)
			}
		}
	}
	viaRoles := map[int32][]Ref{}
	var perms []int32
	for _, r := range roles {
		role := &m.doc.Roles[r]
		e.Roles = append(e.Roles, RoleGrant{Ref: Ref{role.ID, role.Name}, ApplicationType: role.ApplicationType,
			ApplicationID: role.ApplicationID, Groups: viaGroups[r], Direct: isDirect[r]})
		for _, p := range m.rolePerms[r] {
			if refs := viaRoles[p]; len(refs) == 0 || refs[len(refs)-1].ID != role.ID {
				viaRoles[p] = append(refs, Ref{role.ID, role.Name})
			}
			perms = append(perms, p)
		}
	}
	for _, p := range sortUnique(perms) {
		perm := &m.doc.Permissions[p]
		e.Permissions = append(e.Permissions, PermissionGrant{Ref: Ref{perm.ID, perm.Name}, ApplicationType: perm.ApplicationType,
			ApplicationID: perm.ApplicationID, Roles: viaRoles[p]})
	}
	return e
}

// upward returns, for start and every group nesting it (transitively), a
// shortest path from start to that group: a breadth-first walk over the
// parents, cycle-safe. It reaches exactly ancestors[start].
func (m *Model) upward(start int32) map[int32][]Ref {
	prev := map[int32]int32{start: -1}
	queue := []int32{start}
	for i := 0; i < len(queue); i++ {
		g := queue[i]
		for _, p := range m.parents[g] {
			if _, seen := prev[p]; !seen {
				prev[p] = g
				queue = append(queue, p)
			}
		}
	}
	out := make(map[int32][]Ref, len(queue))
	for _, g := range queue {
		var path []Ref
		for at := g; at >= 0; at = prev[at] {
			path = append(path, m.groupRef(at))
		}
		slices.Reverse(path)
		out[g] = path
	}
	return out
}

func (m *Model) groupRef(g int32) Ref { return Ref{m.doc.Groups[g].ID, m.doc.Groups[g].Name} }

// mappingWhy finds the mapping of group g that matched label on connection.
func (m *Model) mappingWhy(g int32, connection, label, from string, fromGroup *Ref) *MappingWhy {
	mw := &MappingWhy{Connection: connection, GroupName: label, From: from, FromGroup: fromGroup}
	for _, mp := range m.doc.Groups[g].Mappings {
		if mp.ConnectionName == connection && mp.GroupName == label {
			mw.ID = mp.ID
			break
		}
	}
	return mw
}

func sameWhy(a, b GroupWhy) bool {
	if a.Via != b.Via || !slices.Equal(a.Path, b.Path) || (a.Mapping == nil) != (b.Mapping == nil) {
		return false
	}
	if a.Mapping == nil {
		return true
	}
	x, y := *a.Mapping, *b.Mapping
	if (x.FromGroup == nil) != (y.FromGroup == nil) || (x.FromGroup != nil && *x.FromGroup != *y.FromGroup) {
		return false
	}
	x.FromGroup, y.FromGroup = nil, nil
	return x == y
}

// Policy is the explanation as Resolve answers it: names, de-duplicated by
// name, in the same order.
func (e *Explanation) Policy() Policy {
	p := Policy{Groups: []string{}, Roles: []string{}, Permissions: []string{}, Revision: e.Revision}
	for _, g := range e.Groups {
		p.Groups = appendName(p.Groups, g.Name)
	}
	for _, r := range e.Roles {
		p.Roles = appendName(p.Roles, r.Name)
	}
	for _, x := range e.Permissions {
		p.Permissions = appendName(p.Permissions, x.Name)
	}
	return p
}

func appendName(s []string, name string) []string {
	if slices.Contains(s, name) {
		return s
	}
	return append(s, name)
}

// GroupChain is the first (direct before mapped, shortest) why-chain of
// effective group i: how the user got into it.
func (e *Explanation) GroupChain(i int) []Step {
	g := e.Groups[i]
	if len(g.Why) == 0 {
		return nil
	}
	w := g.Why[0]
	var out []Step
	if w.Mapping != nil {
		if w.Mapping.FromGroup != nil {
			out = append(out, Step{Kind: "member", Ref: *w.Mapping.FromGroup})
		}
		out = append(out, Step{Kind: "idp-group", Ref: Ref{Name: w.Mapping.GroupName}, Detail: w.Mapping.Connection},
			Step{Kind: "mapping", Ref: w.Path[0], Detail: w.Mapping.Connection})
	} else {
		out = append(out, Step{Kind: "member", Ref: w.Path[0]})
	}
	for _, p := range w.Path[1:] {
		out = append(out, Step{Kind: "nested", Ref: p})
	}
	return out
}

// RoleChain is a why-chain of effective role i: a direct assignment when
// there is one (the shortest), else through its first group.
func (e *Explanation) RoleChain(i int) []Step {
	r := e.Roles[i]
	if r.Direct || len(r.Groups) == 0 {
		return []Step{{Kind: "direct-role", Ref: r.Ref, Detail: r.ApplicationID}}
	}
	gi := slices.IndexFunc(e.Groups, func(g GroupGrant) bool { return g.ID == r.Groups[0].ID })
	return append(e.GroupChain(gi), Step{Kind: "role", Ref: r.Ref, Detail: r.ApplicationID})
}

// PermissionChain is a why-chain of effective permission i, through its
// first granting role.
func (e *Explanation) PermissionChain(i int) []Step {
	p := e.Permissions[i]
	ri := slices.IndexFunc(e.Roles, func(r RoleGrant) bool { return r.ID == p.Roles[0].ID })
	return append(e.RoleChain(ri), Step{Kind: "permission", Ref: p.Ref})
}

// ChainText renders a why-chain for people: "member of SRE → nested in
// Platform → role editor → permission write:docs".
func ChainText(steps []Step) string {
	var b strings.Builder
	for i, s := range steps {
		if i > 0 {
			b.WriteString(" → ")
		}
		switch s.Kind {
		case "member":
			b.WriteString("member of " + s.Name)
		case "idp-group":
			b.WriteString("IdP group " + s.Name + " (connection " + s.Detail + ")")
		case "mapping":
			b.WriteString("mapped to " + s.Name)
		case "nested":
			b.WriteString("nested in " + s.Name)
		case "role":
			b.WriteString("role " + s.Name)
		case "direct-role":
			b.WriteString("role " + s.Name + " assigned directly")
		case "permission":
			b.WriteString("permission " + s.Name)
		default:
			b.WriteString(s.Kind + " " + s.Name)
		}
	}
	return b.String()
}
