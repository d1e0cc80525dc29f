package authz

import (
	"fmt"
	"slices"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// Op is one change to the model. Document-backed stores (memory, file) call
// Apply on a private copy of the current document (Document.CopyForWrite) and
// commit the copy only when every op of a batch succeeded; the redis store
// reads the records of the op's Footprint, applies the op to them and writes
// back the per-record keys that changed. Ops validate
// their input and referential rules and return errors matching the runtime
// sentinels: *runtime.ValidationError (ErrInvalid), ErrNotFound, ErrExists,
// *InUseError (ErrInUse).
//
// Copy-on-write rule: Apply may replace an entity in the document's arrays
// and assign new slices to its fields, but never writes into a nested slice
// or map it found in doc, because the previous snapshot still shares them.
//
// Footprint names every record Apply may read or change (see Footprint): on a
// document holding only those records Apply must behave as on the whole model.
type Op interface {
	Apply(doc *Document) error
	Footprint() Footprint
}

// InUseError is a refused delete: the entity is referenced and the op did not
// ask to cascade. It matches runtime.ErrInUse.
type InUseError struct {
	Entity string   // "group", "role", "permission"
	ID     string   // the entity's _id
	UsedBy string   // "group" or "role"
	By     []string // ids of the referencing entities, in storage order
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s %q is used by %s %s (delete with cascade to remove the references)",
		e.Entity, e.ID, plural(e.UsedBy, len(e.By)), quoteList(e.By))
}

// Is reports runtime.ErrInUse.
func (e *InUseError) Is(target error) bool { return target == runtime.ErrInUse }

func plural(s string, n int) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

func quoteList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	return strings.Join(q, ", ")
}

func notFound(entity, id string) error {
	return fmt.Errorf("%s %q: %w", entity, id, runtime.ErrNotFound)
}

// CopyForWrite returns a document that a batch of ops may change without
// affecting d: the entity arrays are copied, nested slices and maps are
// shared (ops never write into them, see Op).
func (d *Document) CopyForWrite() *Document {
	c := &Document{
		Configuration: slices.Clone(d.Configuration),
		Groups:        slices.Clone(d.Groups),
		Roles:         slices.Clone(d.Roles),
		Permissions:   slices.Clone(d.Permissions),
	}
	if d.Claimsmith != nil {
		c.Claimsmith = &Section{Applications: slices.Clone(d.Claimsmith.Applications)}
	}
	return c
}

// DeepCopy returns a copy sharing nothing mutable with d (Extra values, which
// are immutable raw JSON, are shared).
func (d *Document) DeepCopy() *Document {
	c := &Document{
		Configuration: slices.Clone(d.Configuration),
		Groups:        slices.Clone(d.Groups),
		Roles:         slices.Clone(d.Roles),
		Permissions:   slices.Clone(d.Permissions),
	}
	for i := range c.Configuration {
		c.Configuration[i].Extra = cloneExtra(c.Configuration[i].Extra)
	}
	for i := range c.Groups {
		g := &c.Groups[i]
		g.Members, g.Roles, g.Nested = slices.Clone(g.Members), slices.Clone(g.Roles), slices.Clone(g.Nested)
		g.Mappings = slices.Clone(g.Mappings)
		for j := range g.Mappings {
			g.Mappings[j].Extra = cloneExtra(g.Mappings[j].Extra)
		}
		g.Extra = cloneExtra(g.Extra)
	}
	for i := range c.Roles {
		r := &c.Roles[i]
		r.Permissions, r.Users, r.Extra = slices.Clone(r.Permissions), slices.Clone(r.Users), cloneExtra(r.Extra)
	}
	for i := range c.Permissions {
		c.Permissions[i].Extra = cloneExtra(c.Permissions[i].Extra)
	}
	if d.Claimsmith != nil {
		s := &Section{Applications: slices.Clone(d.Claimsmith.Applications)}
		for i := range s.Applications {
			a := &s.Applications[i]
			a.Metadata = cloneStrings(a.Metadata)
			if a.OAuth != nil {
				o := *a.OAuth
				o.GrantTypes, o.Audiences, o.Scopes, o.Issuers = slices.Clone(o.GrantTypes), slices.Clone(o.Audiences), slices.Clone(o.Scopes), slices.Clone(o.Issuers)
				o.JWKS = slices.Clone(o.JWKS)
				a.OAuth = &o
			}
		}
		if d.Claimsmith.Profiles != nil {
			s.Profiles = make([]ProfileRecord, len(d.Claimsmith.Profiles))
			for i, p := range d.Claimsmith.Profiles {
				s.Profiles[i] = ProfileRecord{UserID: p.UserID, AppMetadata: runtime.CloneMap(p.AppMetadata), UserMetadata: runtime.CloneMap(p.UserMetadata)}
			}
		}
		c.Claimsmith = s
	}
	return c
}

func cloneExtra(e Extra) Extra {
	if e == nil {
		return nil
	}
	c := make(Extra, len(e))
	for k, v := range e {
		c[k] = v
	}
	return c
}

func cloneStrings(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (d *Document) groupIndex(id string) int {
	return slices.IndexFunc(d.Groups, func(g Group) bool { return g.ID == id })
}

func (d *Document) roleIndex(id string) int {
	return slices.IndexFunc(d.Roles, func(r Role) bool { return r.ID == id })
}

func (d *Document) permIndex(id string) int {
	return slices.IndexFunc(d.Permissions, func(p Permission) bool { return p.ID == id })
}

func (d *Document) group(id string) (*Group, error) {
	if i := d.groupIndex(id); i >= 0 {
		return &d.Groups[i], nil
	}
	return nil, notFound("group", id)
}

func (d *Document) role(id string) (*Role, error) {
	if i := d.roleIndex(id); i >= 0 {
		return &d.Roles[i], nil
	}
	return nil, notFound("role", id)
}

func (d *Document) permission(id string) (*Permission, error) {
	if i := d.permIndex(id); i >= 0 {
		return &d.Permissions[i], nil
	}
	return nil, notFound("permission", id)
}

// withAdded returns a new slice: s followed by the values of add not already
// present, in order. s is never written to.
func withAdded(s, add []string) []string {
	have := make(map[string]struct{}, len(s)+len(add))
	for _, v := range s {
		have[v] = struct{}{}
	}
	out := slices.Clip(s)
	for _, v := range add {
		if _, ok := have[v]; ok {
			continue
		}
		have[v] = struct{}{}
		out = append(out, v) // s is clipped: the first append reallocates
	}
	return out
}

// without returns s minus the values in remove, as a new slice (or s itself
// when nothing is removed). s is never written to.
func without(s, remove []string) []string {
	if len(remove) == 0 || len(s) == 0 {
		return s
	}
	drop := make(map[string]struct{}, len(remove))
	for _, v := range remove {
		drop[v] = struct{}{}
	}
	out := make([]string, 0, len(s))
	for _, v := range s {
		if _, ok := drop[v]; !ok {
			out = append(out, v)
		}
	}
	if len(out) == len(s) {
		return s
	}
	return out
}

func requireIDs(entity, id, field string, ids []string) error {
	if len(ids) == 0 {
		return invalid(entity, id, field, "is empty: nothing to change")
	}
	return checkIDs(entity, id, field, ids)
}

func requireID(entity, id string) error {
	if id == "" {
		return invalid(entity, "", "_id", "is required")
	}
	return checkID(entity, "", "_id", id)
}

// ReplaceDocument is an import: it validates Doc as a whole and replaces the
// configuration, groups, roles and permissions (ids kept, no merge). The
// claimsmith section's applications are replaced only when Doc carries a
// claimsmith section, so importing an extension export keeps them. Profiles
// in Doc.Claimsmith are not part of the document: stores replace their whole
// profile set with them when Doc.Claimsmith.Profiles is non-nil (see
// ImportedProfiles). Apply copies Doc; the caller may reuse it.
type ReplaceDocument struct {
	Doc *Document
}

// Apply implements Op.
func (o *ReplaceDocument) Apply(doc *Document) error {
	if o.Doc == nil {
		return invalid("document", "", "", "is missing")
	}
	if err := o.Doc.Validate(); err != nil {
		return err
	}
	in := o.Doc.DeepCopy()
	doc.Configuration, doc.Groups, doc.Roles, doc.Permissions = in.Configuration, in.Groups, in.Roles, in.Permissions
	if in.Claimsmith != nil {
		doc.Claimsmith = &Section{Applications: in.Claimsmith.Applications}
	}
	return nil
}

// ImportedProfiles returns the profiles a batch imports and whether it
// replaces the store's profile set (the last ReplaceDocument whose claimsmith
// section has a profiles list decides).
func ImportedProfiles(ops []Op) ([]ProfileRecord, bool) {
	var out []ProfileRecord
	found := false
	for _, op := range ops {
		if rd, ok := op.(*ReplaceDocument); ok && rd.Doc != nil && rd.Doc.Claimsmith != nil && rd.Doc.Claimsmith.Profiles != nil {
			out, found = rd.Doc.Claimsmith.Profiles, true
		}
	}
	return out, found
}

// SetConfiguration replaces the configuration record with the same _id (or
// appends it); an empty _id means "v1", the extension's only record.
type SetConfiguration struct {
	Configuration Configuration
}

// Apply implements Op.
func (o *SetConfiguration) Apply(doc *Document) error {
	c := o.Configuration
	if c.ID == "" {
		c.ID = "v1"
	}
	c.Extra = cloneExtra(c.Extra)
	for i := range doc.Configuration {
		if doc.Configuration[i].ID == c.ID {
			doc.Configuration[i] = c
			return nil
		}
	}
	doc.Configuration = append(doc.Configuration, c)
	return nil
}

// groupNameTaken enforces the extension's rule on create and rename: group
// names are unique case-insensitively. Imported data may break it.
func groupNameTaken(doc *Document, name, self string) error {
	for i := range doc.Groups {
		g := &doc.Groups[i]
		if g.ID != self && strings.EqualFold(g.Name, name) {
			return fmt.Errorf("group name %q is used by group %q: %w", name, g.ID, runtime.ErrExists)
		}
	}
	return nil
}

// CreateGroup adds a group. ID is chosen by the caller (NewID), so a retried
// request is recognisable: an existing ID fails with runtime.ErrExists.
type CreateGroup struct {
	ID, Name, Description string
}

// Apply implements Op.
func (o *CreateGroup) Apply(doc *Document) error {
	g := Group{ID: o.ID, Name: o.Name, Description: o.Description}
	if err := requireID("group", o.ID); err != nil {
		return err
	}
	if err := g.validate(); err != nil {
		return err
	}
	if doc.groupIndex(o.ID) >= 0 {
		return fmt.Errorf("group %q: %w", o.ID, runtime.ErrExists)
	}
	if err := groupNameTaken(doc, o.Name, ""); err != nil {
		return err
	}
	doc.Groups = append(doc.Groups, g)
	return nil
}

// UpdateGroup sets a group's name and description (the extension's PUT).
type UpdateGroup struct {
	ID, Name, Description string
}

// Apply implements Op.
func (o *UpdateGroup) Apply(doc *Document) error {
	g, err := doc.group(o.ID)
	if err != nil {
		return err
	}
	n := *g
	n.Name, n.Description = o.Name, o.Description
	if err := n.validate(); err != nil {
		return err
	}
	if err := groupNameTaken(doc, o.Name, o.ID); err != nil {
		return err
	}
	*g = n
	return nil
}

// DeleteGroup removes a group. A group nested in other groups is refused with
// *InUseError unless Cascade, which also removes it from its parents.
type DeleteGroup struct {
	ID      string
	Cascade bool
}

// Apply implements Op.
func (o *DeleteGroup) Apply(doc *Document) error {
	i := doc.groupIndex(o.ID)
	if i < 0 {
		return notFound("group", o.ID)
	}
	var parents []int
	for pi := range doc.Groups {
		if pi != i && slices.Contains(doc.Groups[pi].Nested, o.ID) {
			parents = append(parents, pi)
		}
	}
	if len(parents) > 0 && !o.Cascade {
		e := &InUseError{Entity: "group", ID: o.ID, UsedBy: "group"}
		for _, pi := range parents {
			e.By = append(e.By, doc.Groups[pi].ID)
		}
		return e
	}
	for _, pi := range parents {
		doc.Groups[pi].Nested = without(doc.Groups[pi].Nested, []string{o.ID})
	}
	doc.Groups = slices.Delete(doc.Groups, i, i+1)
	return nil
}

// AddGroupMembers adds user ids to a group's members (existing ones kept once).
type AddGroupMembers struct {
	GroupID string
	UserIDs []string
}

// Apply implements Op.
func (o *AddGroupMembers) Apply(doc *Document) error {
	g, err := doc.group(o.GroupID)
	if err != nil {
		return err
	}
	if err := requireIDs("group", o.GroupID, "members", o.UserIDs); err != nil {
		return err
	}
	g.Members = withAdded(g.Members, o.UserIDs)
	return nil
}

// RemoveGroupMembers removes user ids from a group; absent ones are ignored so
// a retried request succeeds.
type RemoveGroupMembers struct {
	GroupID string
	UserIDs []string
}

// Apply implements Op.
func (o *RemoveGroupMembers) Apply(doc *Document) error {
	g, err := doc.group(o.GroupID)
	if err != nil {
		return err
	}
	if err := requireIDs("group", o.GroupID, "members", o.UserIDs); err != nil {
		return err
	}
	g.Members = without(g.Members, o.UserIDs)
	return nil
}

// RemoveUserFromGroups removes one user from the listed groups, or from every
// group when GroupIDs is empty.
type RemoveUserFromGroups struct {
	UserID   string
	GroupIDs []string
}

// Apply implements Op.
func (o *RemoveUserFromGroups) Apply(doc *Document) error {
	if o.UserID == "" {
		return invalid("user", "", "user_id", "is required")
	}
	if err := CheckID("user", "user_id", o.UserID); err != nil {
		return err
	}
	rm := []string{o.UserID}
	if len(o.GroupIDs) == 0 {
		for i := range doc.Groups {
			doc.Groups[i].Members = without(doc.Groups[i].Members, rm)
		}
		return nil
	}
	for _, id := range o.GroupIDs {
		if _, err := doc.group(id); err != nil {
			return err
		}
	}
	for _, id := range o.GroupIDs {
		g, _ := doc.group(id)
		g.Members = without(g.Members, rm)
	}
	return nil
}

// AddNestedGroups makes the listed groups children of GroupID: members of a
// child are members of the parent. A group cannot nest itself; longer cycles
// are allowed (the extension allows them and resolution is cycle-safe).
type AddNestedGroups struct {
	GroupID  string
	GroupIDs []string
}

// Apply implements Op.
func (o *AddNestedGroups) Apply(doc *Document) error {
	g, err := doc.group(o.GroupID)
	if err != nil {
		return err
	}
	if err := requireIDs("group", o.GroupID, "nested", o.GroupIDs); err != nil {
		return err
	}
	for i, id := range o.GroupIDs {
		if id == o.GroupID {
			return invalid("group", o.GroupID, fmt.Sprintf("nested[%d]", i), "a group cannot nest itself")
		}
		if doc.groupIndex(id) < 0 {
			return notFound("group", id)
		}
	}
	g.Nested = withAdded(g.Nested, o.GroupIDs)
	return nil
}

// RemoveNestedGroups removes children from a group; absent ones are ignored.
type RemoveNestedGroups struct {
	GroupID  string
	GroupIDs []string
}

// Apply implements Op.
func (o *RemoveNestedGroups) Apply(doc *Document) error {
	g, err := doc.group(o.GroupID)
	if err != nil {
		return err
	}
	if err := requireIDs("group", o.GroupID, "nested", o.GroupIDs); err != nil {
		return err
	}
	g.Nested = without(g.Nested, o.GroupIDs)
	return nil
}

// AddGroupRoles gives a group roles (which must exist).
type AddGroupRoles struct {
	GroupID string
	RoleIDs []string
}

// Apply implements Op.
func (o *AddGroupRoles) Apply(doc *Document) error {
	g, err := doc.group(o.GroupID)
	if err != nil {
		return err
	}
	if err := requireIDs("group", o.GroupID, "roles", o.RoleIDs); err != nil {
		return err
	}
	for _, id := range o.RoleIDs {
		if doc.roleIndex(id) < 0 {
			return notFound("role", id)
		}
	}
	g.Roles = withAdded(g.Roles, o.RoleIDs)
	return nil
}

// RemoveGroupRoles takes roles from a group; absent ones are ignored.
type RemoveGroupRoles struct {
	GroupID string
	RoleIDs []string
}

// Apply implements Op.
func (o *RemoveGroupRoles) Apply(doc *Document) error {
	g, err := doc.group(o.GroupID)
	if err != nil {
		return err
	}
	if err := requireIDs("group", o.GroupID, "roles", o.RoleIDs); err != nil {
		return err
	}
	g.Roles = without(g.Roles, o.RoleIDs)
	return nil
}

// AddGroupMappings adds IdP group mappings to a group. Each mapping carries
// its own _id (NewID); an id already used in the group is runtime.ErrExists.
type AddGroupMappings struct {
	GroupID  string
	Mappings []Mapping
}

// Apply implements Op.
func (o *AddGroupMappings) Apply(doc *Document) error {
	g, err := doc.group(o.GroupID)
	if err != nil {
		return err
	}
	if len(o.Mappings) == 0 {
		return invalid("group", o.GroupID, "mappings", "is empty: nothing to change")
	}
	out := slices.Clip(g.Mappings)
	for j, m := range o.Mappings {
		if m.ID == "" {
			return invalid("group", o.GroupID, fmt.Sprintf("mappings[%d]._id", j), "is required")
		}
		if err := checkID("group", o.GroupID, fmt.Sprintf("mappings[%d]._id", j), m.ID); err != nil {
			return err
		}
		if err := m.validate(o.GroupID, j); err != nil {
			return err
		}
		if slices.ContainsFunc(out, func(x Mapping) bool { return x.ID == m.ID }) {
			return fmt.Errorf("group %q: mapping %q: %w", o.GroupID, m.ID, runtime.ErrExists)
		}
		m.Extra = cloneExtra(m.Extra)
		out = append(out, m)
	}
	g.Mappings = out
	return nil
}

// RemoveGroupMappings removes mappings by _id; absent ones are ignored.
type RemoveGroupMappings struct {
	GroupID    string
	MappingIDs []string
}

// Apply implements Op.
func (o *RemoveGroupMappings) Apply(doc *Document) error {
	g, err := doc.group(o.GroupID)
	if err != nil {
		return err
	}
	if err := requireIDs("group", o.GroupID, "mappings", o.MappingIDs); err != nil {
		return err
	}
	out := make([]Mapping, 0, len(g.Mappings))
	for _, m := range g.Mappings {
		if !slices.Contains(o.MappingIDs, m.ID) {
			out = append(out, m)
		}
	}
	g.Mappings = out
	return nil
}

// roleNameTaken enforces unique role names per application on create and
// rename (exact match: resolution de-duplicates names case-sensitively).
func roleNameTaken(doc *Document, name, appID, self string) error {
	for i := range doc.Roles {
		r := &doc.Roles[i]
		if r.ID != self && r.ApplicationID == appID && r.Name == name {
			return fmt.Errorf("role name %q is used by role %q of application %q: %w", name, r.ID, appID, runtime.ErrExists)
		}
	}
	return nil
}

func permNameTaken(doc *Document, name, appID, self string) error {
	for i := range doc.Permissions {
		p := &doc.Permissions[i]
		if p.ID != self && p.ApplicationID == appID && p.Name == name {
			return fmt.Errorf("permission name %q is used by permission %q of application %q: %w", name, p.ID, appID, runtime.ErrExists)
		}
	}
	return nil
}

func checkPermsExist(doc *Document, ids []string) error {
	for _, id := range ids {
		if doc.permIndex(id) < 0 {
			return notFound("permission", id)
		}
	}
	return nil
}

// CreateRole adds a role for one application: a client (ApplicationType
// client, ApplicationID its client_id) or an API (resource_server, its
// audience). Permissions must exist.
type CreateRole struct {
	ID, Name, Description          string
	ApplicationType, ApplicationID string
	Permissions                    []string
}

// Apply implements Op.
func (o *CreateRole) Apply(doc *Document) error {
	r := Role{ID: o.ID, Name: o.Name, Description: o.Description, ApplicationType: o.ApplicationType,
		ApplicationID: o.ApplicationID, Permissions: slices.Clone(o.Permissions)}
	if err := requireID("role", o.ID); err != nil {
		return err
	}
	if err := r.validate(true); err != nil {
		return err
	}
	if doc.roleIndex(o.ID) >= 0 {
		return fmt.Errorf("role %q: %w", o.ID, runtime.ErrExists)
	}
	if err := roleNameTaken(doc, o.Name, o.ApplicationID, ""); err != nil {
		return err
	}
	if err := checkPermsExist(doc, o.Permissions); err != nil {
		return err
	}
	r.Permissions = withAdded(nil, r.Permissions)
	doc.Roles = append(doc.Roles, r)
	return nil
}

// UpdateRole sets a role's name, description and application; Permissions
// replaces its permission list when non-nil (the extension's PUT sends it).
type UpdateRole struct {
	ID, Name, Description          string
	ApplicationType, ApplicationID string
	Permissions                    []string
}

// Apply implements Op.
func (o *UpdateRole) Apply(doc *Document) error {
	r, err := doc.role(o.ID)
	if err != nil {
		return err
	}
	n := *r
	n.Name, n.Description, n.ApplicationType, n.ApplicationID = o.Name, o.Description, o.ApplicationType, o.ApplicationID
	if o.Permissions != nil {
		n.Permissions = withAdded(nil, o.Permissions)
	}
	if err := n.validate(true); err != nil {
		return err
	}
	if err := roleNameTaken(doc, o.Name, o.ApplicationID, o.ID); err != nil {
		return err
	}
	if o.Permissions != nil {
		if err := checkPermsExist(doc, o.Permissions); err != nil {
			return err
		}
	}
	*r = n
	return nil
}

// DeleteRole removes a role. A role used by a group is refused with
// *InUseError unless Cascade, which also removes it from those groups.
type DeleteRole struct {
	ID      string
	Cascade bool
}

// Apply implements Op.
func (o *DeleteRole) Apply(doc *Document) error {
	i := doc.roleIndex(o.ID)
	if i < 0 {
		return notFound("role", o.ID)
	}
	var users []int
	for gi := range doc.Groups {
		if slices.Contains(doc.Groups[gi].Roles, o.ID) {
			users = append(users, gi)
		}
	}
	if len(users) > 0 && !o.Cascade {
		e := &InUseError{Entity: "role", ID: o.ID, UsedBy: "group"}
		for _, gi := range users {
			e.By = append(e.By, doc.Groups[gi].ID)
		}
		return e
	}
	for _, gi := range users {
		doc.Groups[gi].Roles = without(doc.Groups[gi].Roles, []string{o.ID})
	}
	doc.Roles = slices.Delete(doc.Roles, i, i+1)
	return nil
}

// AddRoleUsers assigns a role directly to users.
type AddRoleUsers struct {
	RoleID  string
	UserIDs []string
}

// Apply implements Op.
func (o *AddRoleUsers) Apply(doc *Document) error {
	r, err := doc.role(o.RoleID)
	if err != nil {
		return err
	}
	if err := requireIDs("role", o.RoleID, "users", o.UserIDs); err != nil {
		return err
	}
	r.Users = withAdded(r.Users, o.UserIDs)
	return nil
}

// RemoveRoleUsers removes direct assignments; absent users are ignored.
type RemoveRoleUsers struct {
	RoleID  string
	UserIDs []string
}

// Apply implements Op.
func (o *RemoveRoleUsers) Apply(doc *Document) error {
	r, err := doc.role(o.RoleID)
	if err != nil {
		return err
	}
	if err := requireIDs("role", o.RoleID, "users", o.UserIDs); err != nil {
		return err
	}
	r.Users = without(r.Users, o.UserIDs)
	return nil
}

// AddRolePermissions grants a role permissions (which must exist).
type AddRolePermissions struct {
	RoleID        string
	PermissionIDs []string
}

// Apply implements Op.
func (o *AddRolePermissions) Apply(doc *Document) error {
	r, err := doc.role(o.RoleID)
	if err != nil {
		return err
	}
	if err := requireIDs("role", o.RoleID, "permissions", o.PermissionIDs); err != nil {
		return err
	}
	if err := checkPermsExist(doc, o.PermissionIDs); err != nil {
		return err
	}
	r.Permissions = withAdded(r.Permissions, o.PermissionIDs)
	return nil
}

// RemoveRolePermissions revokes permissions from a role; absent ones are
// ignored.
type RemoveRolePermissions struct {
	RoleID        string
	PermissionIDs []string
}

// Apply implements Op.
func (o *RemoveRolePermissions) Apply(doc *Document) error {
	r, err := doc.role(o.RoleID)
	if err != nil {
		return err
	}
	if err := requireIDs("role", o.RoleID, "permissions", o.PermissionIDs); err != nil {
		return err
	}
	r.Permissions = without(r.Permissions, o.PermissionIDs)
	return nil
}

// CreatePermission adds a permission of one application.
type CreatePermission struct {
	ID, Name, Description          string
	ApplicationType, ApplicationID string
}

// Apply implements Op.
func (o *CreatePermission) Apply(doc *Document) error {
	p := Permission{ID: o.ID, Name: o.Name, Description: o.Description, ApplicationType: o.ApplicationType, ApplicationID: o.ApplicationID}
	if err := requireID("permission", o.ID); err != nil {
		return err
	}
	if err := p.validate(true); err != nil {
		return err
	}
	if doc.permIndex(o.ID) >= 0 {
		return fmt.Errorf("permission %q: %w", o.ID, runtime.ErrExists)
	}
	if err := permNameTaken(doc, o.Name, o.ApplicationID, ""); err != nil {
		return err
	}
	doc.Permissions = append(doc.Permissions, p)
	return nil
}

// UpdatePermission sets a permission's name, description and application.
type UpdatePermission struct {
	ID, Name, Description          string
	ApplicationType, ApplicationID string
}

// Apply implements Op.
func (o *UpdatePermission) Apply(doc *Document) error {
	p, err := doc.permission(o.ID)
	if err != nil {
		return err
	}
	n := *p
	n.Name, n.Description, n.ApplicationType, n.ApplicationID = o.Name, o.Description, o.ApplicationType, o.ApplicationID
	if err := n.validate(true); err != nil {
		return err
	}
	if err := permNameTaken(doc, o.Name, o.ApplicationID, o.ID); err != nil {
		return err
	}
	*p = n
	return nil
}

// DeletePermission removes a permission. One used by a role is refused with
// *InUseError unless Cascade, which also removes it from those roles.
type DeletePermission struct {
	ID      string
	Cascade bool
}

// Apply implements Op.
func (o *DeletePermission) Apply(doc *Document) error {
	i := doc.permIndex(o.ID)
	if i < 0 {
		return notFound("permission", o.ID)
	}
	var users []int
	for ri := range doc.Roles {
		if slices.Contains(doc.Roles[ri].Permissions, o.ID) {
			users = append(users, ri)
		}
	}
	if len(users) > 0 && !o.Cascade {
		e := &InUseError{Entity: "permission", ID: o.ID, UsedBy: "role"}
		for _, ri := range users {
			e.By = append(e.By, doc.Roles[ri].ID)
		}
		return e
	}
	for _, ri := range users {
		doc.Roles[ri].Permissions = without(doc.Roles[ri].Permissions, []string{o.ID})
	}
	doc.Permissions = slices.Delete(doc.Permissions, i, i+1)
	return nil
}

// PutApplication creates or replaces an application by client_id. An
// existing application's OAuth registration is kept unless Application
// carries one: it is managed by SetApplicationOAuth (the admin API's
// /api/clients), so editing a name or metadata never drops a client.
type PutApplication struct {
	Application Application
}

// Apply implements Op.
func (o *PutApplication) Apply(doc *Document) error {
	a := o.Application
	if err := a.validate(); err != nil {
		return err
	}
	a.Metadata = cloneStrings(a.Metadata)
	if doc.Claimsmith == nil {
		doc.Claimsmith = &Section{}
	}
	apps := doc.Claimsmith.Applications
	for i := range apps {
		if apps[i].ClientID == a.ClientID {
			if a.OAuth == nil {
				a.OAuth = apps[i].OAuth
			}
			apps[i] = a
			return nil
		}
	}
	doc.Claimsmith.Applications = append(apps, a)
	return nil
}

// SetApplicationOAuth sets (or, with OAuth nil, removes) an existing
// application's OAuth registration; ErrNotFound when there is no such
// application.
type SetApplicationOAuth struct {
	ClientID string
	OAuth    *OAuthClient
}

// Apply implements Op.
func (o *SetApplicationOAuth) Apply(doc *Document) error {
	if doc.Claimsmith != nil {
		apps := doc.Claimsmith.Applications
		if i := slices.IndexFunc(apps, func(a Application) bool { return a.ClientID == o.ClientID }); i >= 0 {
			apps[i].OAuth = o.OAuth
			return nil
		}
	}
	return notFound("application", o.ClientID)
}

// DeleteApplication removes an application by client_id.
type DeleteApplication struct {
	ClientID string
}

// Apply implements Op.
func (o *DeleteApplication) Apply(doc *Document) error {
	if doc.Claimsmith != nil {
		apps := doc.Claimsmith.Applications
		if i := slices.IndexFunc(apps, func(a Application) bool { return a.ClientID == o.ClientID }); i >= 0 {
			doc.Claimsmith.Applications = slices.Delete(apps, i, i+1)
			return nil
		}
	}
	return notFound("application", o.ClientID)
}

// OpError wraps the error of the i-th of n ops of a batch so the caller
// knows which op failed; a single op's error is returned as is.
func OpError(i, n int, err error) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("op %d of %d: %w", i+1, n, err)
}
