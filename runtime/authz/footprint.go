package authz

import (
	"context"
	"slices"
	"strings"
)

// Footprint names the records a batch of ops reads or writes: the entities by
// _id, and the entities found through the model's reverse relations (name
// clashes, who nests or references an entity, a user's memberships). Running
// an op on a document holding only its footprint gives the same result as on
// the whole model, so stores and the admin service read, write and audit
// O(what changed) instead of O(model).
type Footprint struct {
	// All is the whole model (an import).
	All bool
	// Groups, Roles and Permissions by _id.
	Groups, Roles, Permissions []string
	// GroupNames: groups whose name equals one of these case-insensitively.
	GroupNames []string
	// RoleNames and PermissionNames: records of the application with that name.
	RoleNames, PermissionNames []AppName
	// ParentsOf: groups whose nested list holds one of these group ids.
	ParentsOf []string
	// MemberOf: groups listing one of these users as a member.
	MemberOf []string
	// RolesOfUsers: roles assigned directly to one of these users.
	RolesOfUsers []string
	// GroupsWithRoles: groups holding one of these roles.
	GroupsWithRoles []string
	// RolesWithPermissions: roles granting one of these permissions.
	RolesWithPermissions []string
	// Applications and Configuration: the whole (small) lists.
	Applications, Configuration bool
}

// AppName is a role or permission name within one application.
type AppName struct {
	ApplicationID, Name string
}

// Add merges o into f.
func (f *Footprint) Add(o Footprint) {
	f.All = f.All || o.All
	f.Groups = append(f.Groups, o.Groups...)
	f.Roles = append(f.Roles, o.Roles...)
	f.Permissions = append(f.Permissions, o.Permissions...)
	f.GroupNames = append(f.GroupNames, o.GroupNames...)
	f.RoleNames = append(f.RoleNames, o.RoleNames...)
	f.PermissionNames = append(f.PermissionNames, o.PermissionNames...)
	f.ParentsOf = append(f.ParentsOf, o.ParentsOf...)
	f.MemberOf = append(f.MemberOf, o.MemberOf...)
	f.RolesOfUsers = append(f.RolesOfUsers, o.RolesOfUsers...)
	f.GroupsWithRoles = append(f.GroupsWithRoles, o.GroupsWithRoles...)
	f.RolesWithPermissions = append(f.RolesWithPermissions, o.RolesWithPermissions...)
	f.Applications = f.Applications || o.Applications
	f.Configuration = f.Configuration || o.Configuration
}

// FootprintOf is the union of the ops' footprints.
func FootprintOf(ops ...Op) Footprint {
	var f Footprint
	for _, op := range ops {
		f.Add(op.Footprint())
	}
	return f
}

// RecordReader reads the records of a footprint at one revision: the narrow
// read that replaces Snapshot where a few records are needed.
type RecordReader interface {
	// Records returns a document holding exactly the footprint's records
	// that exist, in storage order, and the revision they were read at.
	// Callers must not change it.
	Records(ctx context.Context, fp Footprint) (*Document, uint64, error)
}

// Change is a committed batch as the store applied it.
type Change struct {
	// Previous and Revision are the store's revisions before and after.
	Previous, Revision uint64
	// Before holds the records of the batch's footprint and of the reads
	// asked for, as the batch found them; After the same records as it left
	// them (deleted ones missing) plus those that match the footprint only
	// now: Records(footprint.WithRecordsOf(Before)) right after the write.
	Before, After *Document
}

// WithRecordsOf is f plus the ids of d's groups, roles and permissions: the
// records a batch found stay in its after-view even when they no longer
// match a relation of f (a member removed, a role unassigned).
func (f Footprint) WithRecordsOf(d *Document) Footprint {
	var out Footprint
	out.Add(f)
	for _, g := range d.Groups {
		out.Groups = append(out.Groups, g.ID)
	}
	for _, r := range d.Roles {
		out.Roles = append(out.Roles, r.ID)
	}
	for _, p := range d.Permissions {
		out.Permissions = append(out.Permissions, p.ID)
	}
	return out
}

// Committer is a Writer that reports what a batch touched, read in the
// batch's own transaction: what the admin service audits. expected works as
// in Writer.Apply (0: any revision; the store then retries a lost race
// itself). A batch whose footprint is the whole model (an import) is
// refused with runtime.ErrInvalid: use Apply.
type Committer interface {
	Commit(ctx context.Context, expected uint64, reads Footprint, ops ...Op) (Change, error)
}

// Records selects the footprint's records from the model, through its
// indexes where it has them. It is the RecordReader of the document-backed
// stores.
func (m *Model) Records(fp Footprint) *Document {
	doc := m.doc
	if fp.All {
		return doc
	}
	out := &Document{}
	groups := map[int32]bool{}
	for _, id := range fp.Groups {
		if i, ok := m.groupByID[id]; ok {
			groups[i] = true
		}
	}
	for _, u := range fp.MemberOf {
		if ui, ok := m.users[u]; ok {
			for _, gi := range m.userGroups[ui] {
				groups[gi] = true
			}
		}
	}
	if len(fp.GroupNames)+len(fp.ParentsOf)+len(fp.GroupsWithRoles) > 0 {
		for i := range doc.Groups {
			g := &doc.Groups[i]
			if slices.ContainsFunc(fp.GroupNames, func(n string) bool { return strings.EqualFold(n, g.Name) }) ||
				slices.ContainsFunc(fp.ParentsOf, func(id string) bool { return slices.Contains(g.Nested, id) }) ||
				slices.ContainsFunc(fp.GroupsWithRoles, func(id string) bool { return slices.Contains(g.Roles, id) }) {
				groups[int32(i)] = true
			}
		}
	}
	for _, i := range sortedKeys(groups) {
		out.Groups = append(out.Groups, doc.Groups[i])
	}

	roles := map[int32]bool{}
	for _, id := range fp.Roles {
		if i, ok := m.roleByID[id]; ok {
			roles[i] = true
		}
	}
	for _, u := range fp.RolesOfUsers {
		if ui, ok := m.users[u]; ok {
			for _, ri := range m.userRoles[ui] {
				roles[ri] = true
			}
		}
	}
	if len(fp.RoleNames)+len(fp.RolesWithPermissions) > 0 {
		for i := range doc.Roles {
			r := &doc.Roles[i]
			if slices.Contains(fp.RoleNames, AppName{r.ApplicationID, r.Name}) ||
				slices.ContainsFunc(fp.RolesWithPermissions, func(id string) bool { return slices.Contains(r.Permissions, id) }) {
				roles[int32(i)] = true
			}
		}
	}
	for _, i := range sortedKeys(roles) {
		out.Roles = append(out.Roles, doc.Roles[i])
	}

	perms := map[int32]bool{}
	for _, id := range fp.Permissions {
		if i, ok := m.permByID[id]; ok {
			perms[i] = true
		}
	}
	if len(fp.PermissionNames) > 0 {
		for i := range doc.Permissions {
			p := &doc.Permissions[i]
			if slices.Contains(fp.PermissionNames, AppName{p.ApplicationID, p.Name}) {
				perms[int32(i)] = true
			}
		}
	}
	for _, i := range sortedKeys(perms) {
		out.Permissions = append(out.Permissions, doc.Permissions[i])
	}
	if fp.Configuration {
		out.Configuration = doc.Configuration
	}
	if fp.Applications {
		out.Claimsmith = &Section{}
		if doc.Claimsmith != nil {
			out.Claimsmith.Applications = doc.Claimsmith.Applications
		}
	}
	return out
}

func sortedKeys(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Footprint implements Op.
func (o *ReplaceDocument) Footprint() Footprint { return Footprint{All: true} }

// Footprint implements Op.
func (o *SetConfiguration) Footprint() Footprint { return Footprint{Configuration: true} }

// Footprint implements Op.
func (o *CreateGroup) Footprint() Footprint {
	return Footprint{Groups: []string{o.ID}, GroupNames: []string{o.Name}}
}

// Footprint implements Op.
func (o *UpdateGroup) Footprint() Footprint {
	return Footprint{Groups: []string{o.ID}, GroupNames: []string{o.Name}}
}

// Footprint implements Op.
func (o *DeleteGroup) Footprint() Footprint {
	return Footprint{Groups: []string{o.ID}, ParentsOf: []string{o.ID}}
}

// Footprint implements Op.
func (o *AddGroupMembers) Footprint() Footprint { return Footprint{Groups: []string{o.GroupID}} }

// Footprint implements Op.
func (o *RemoveGroupMembers) Footprint() Footprint { return Footprint{Groups: []string{o.GroupID}} }

// Footprint implements Op.
func (o *RemoveUserFromGroups) Footprint() Footprint {
	return Footprint{Groups: slices.Clone(o.GroupIDs), MemberOf: []string{o.UserID}}
}

// Footprint implements Op.
func (o *AddNestedGroups) Footprint() Footprint {
	return Footprint{Groups: append([]string{o.GroupID}, o.GroupIDs...)}
}

// Footprint implements Op.
func (o *RemoveNestedGroups) Footprint() Footprint { return Footprint{Groups: []string{o.GroupID}} }

// Footprint implements Op.
func (o *AddGroupRoles) Footprint() Footprint {
	return Footprint{Groups: []string{o.GroupID}, Roles: slices.Clone(o.RoleIDs)}
}

// Footprint implements Op.
func (o *RemoveGroupRoles) Footprint() Footprint { return Footprint{Groups: []string{o.GroupID}} }

// Footprint implements Op.
func (o *AddGroupMappings) Footprint() Footprint { return Footprint{Groups: []string{o.GroupID}} }

// Footprint implements Op.
func (o *RemoveGroupMappings) Footprint() Footprint { return Footprint{Groups: []string{o.GroupID}} }

// Footprint implements Op.
func (o *CreateRole) Footprint() Footprint {
	return Footprint{Roles: []string{o.ID}, RoleNames: []AppName{{o.ApplicationID, o.Name}}, Permissions: slices.Clone(o.Permissions)}
}

// Footprint implements Op.
func (o *UpdateRole) Footprint() Footprint {
	return Footprint{Roles: []string{o.ID}, RoleNames: []AppName{{o.ApplicationID, o.Name}}, Permissions: slices.Clone(o.Permissions)}
}

// Footprint implements Op.
func (o *DeleteRole) Footprint() Footprint {
	return Footprint{Roles: []string{o.ID}, GroupsWithRoles: []string{o.ID}}
}

// Footprint implements Op.
func (o *AddRoleUsers) Footprint() Footprint { return Footprint{Roles: []string{o.RoleID}} }

// Footprint implements Op.
func (o *RemoveRoleUsers) Footprint() Footprint { return Footprint{Roles: []string{o.RoleID}} }

// Footprint implements Op.
func (o *AddRolePermissions) Footprint() Footprint {
	return Footprint{Roles: []string{o.RoleID}, Permissions: slices.Clone(o.PermissionIDs)}
}

// Footprint implements Op.
func (o *RemoveRolePermissions) Footprint() Footprint { return Footprint{Roles: []string{o.RoleID}} }

// Footprint implements Op.
func (o *CreatePermission) Footprint() Footprint {
	return Footprint{Permissions: []string{o.ID}, PermissionNames: []AppName{{o.ApplicationID, o.Name}}}
}

// Footprint implements Op.
func (o *UpdatePermission) Footprint() Footprint {
	return Footprint{Permissions: []string{o.ID}, PermissionNames: []AppName{{o.ApplicationID, o.Name}}}
}

// Footprint implements Op.
func (o *DeletePermission) Footprint() Footprint {
	return Footprint{Permissions: []string{o.ID}, RolesWithPermissions: []string{o.ID}}
}

// Footprint implements Op.
func (o *PutApplication) Footprint() Footprint { return Footprint{Applications: true} }

// Footprint implements Op.
func (o *DeleteApplication) Footprint() Footprint { return Footprint{Applications: true} }

// Footprint implements Op.
func (o *SetApplicationOAuth) Footprint() Footprint { return Footprint{Applications: true} }
