package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The groups page: search and paging over every group, create; a group's
// page: rename, delete (with the referential rule it is under), members
// (paged, bulk add by pasting ids), nested groups as a tree with cycle
// warnings, roles and IdP group mappings.

// GroupsPerPage is the groups list's page size.
const GroupsPerPage = 50

// MembersPerPage is a group's members list page size.
const MembersPerPage = 100

func (d *Dashboard) groupsPage() Page {
	w := radmin.ScopeWrite
	return Page{Name: "groups", Title: "Groups", Href: Prefix + "groups", Views: []string{"group"}, Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "groups", Handle: d.groupsList},
		{Method: http.MethodPost, Path: Prefix + "groups", Scope: w, Handle: d.groupCreate},
		{Method: http.MethodGet, Path: Prefix + "groups/{id}", Handle: d.groupShow},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/rename", Scope: w, Handle: d.groupRename},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/delete", Scope: w, Handle: d.groupDelete},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/members/add", Scope: w, Handle: d.groupMembersAdd},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/members/remove", Scope: w, Handle: d.groupMembersRemove},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/nested/add", Scope: w, Handle: d.groupNestedAdd},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/nested/remove", Scope: w, Handle: d.groupNestedRemove},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/roles/add", Scope: w, Handle: d.groupRolesAdd},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/roles/remove", Scope: w, Handle: d.groupRolesRemove},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/mappings/add", Scope: w, Handle: d.groupMappingsAdd},
		{Method: http.MethodPost, Path: Prefix + "groups/{id}/mappings/remove", Scope: w, Handle: d.groupMappingsRemove},
	}}
}

// ---- list ----

type groupRow struct {
	ID, Name, Description            string
	Members, Nested, Roles, Mappings int
}

type groupsData struct {
	Q        string
	Rows     []groupRow
	Pager    Pager
	Revision uint64
}

func (d *Dashboard) groupsData(r *http.Request) (groupsData, error) {
	lq, err := ParseListQuery(r.URL.Query(), GroupsPerPage)
	if err != nil {
		return groupsData{}, err
	}
	p, err := d.svc.Groups(r.Context(), lq)
	if err != nil {
		return groupsData{}, err
	}
	rows := make([]groupRow, len(p.Items))
	for i, g := range p.Items {
		rows[i] = groupRow{ID: g.ID, Name: g.Name, Description: g.Description, Members: len(g.Members), Nested: len(g.Nested),
			Roles: len(g.Roles), Mappings: len(g.Mappings)}
	}
	return groupsData{Q: r.URL.Query().Get("q"), Rows: rows, Revision: p.Revision,
		Pager: NewPager(*r.URL, p.Page, p.PerPage, p.Total)}, nil
}

func (d *Dashboard) groupsList(w http.ResponseWriter, r *http.Request, c *Call) error {
	data, err := d.groupsData(r)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("fragment") != "" {
		d.Fragment(w, c, "groups", "group-rows", data)
		return nil
	}
	d.Render(w, c, http.StatusOK, "groups", "Groups", data, nil)
	return nil
}

// refuse re-renders the groups list with a refused create form.
func (d *Dashboard) groupsRefuse(w http.ResponseWriter, r *http.Request, c *Call, err error) error {
	data, lerr := d.groupsData(r)
	if lerr != nil {
		return lerr
	}
	d.Render(w, c, errorStatus(err), "groups", "Groups", data, FormError("create", r, err, map[string]string{"name": "name", "description": "description"}))
	return nil
}

func (d *Dashboard) groupCreate(w http.ResponseWriter, r *http.Request, c *Call) error {
	if err := parseForm(r); err != nil {
		return d.groupsRefuse(w, r, c, err)
	}
	name, err := FormText(r.PostForm, "group", "name", 4096, true)
	if err != nil {
		return d.groupsRefuse(w, r, c, err)
	}
	desc, err := FormText(r.PostForm, "group", "description", 1<<16, false)
	if err != nil {
		return d.groupsRefuse(w, r, c, err)
	}
	id := authz.NewID()
	if _, err := d.apply(r, c, entityChange("group.create", "group", id, &authz.CreateGroup{ID: id, Name: name, Description: desc}), radmin.IfMatch{}); err != nil {
		return d.groupsRefuse(w, r, c, err)
	}
	d.redirectFlash(w, r, Prefix+"groups/"+pathEscape(id), fmt.Sprintf("Group %q created.", name))
	return nil
}

// ---- one group ----

type ref struct{ ID, Name, Note string }

// treeNode is a nested group below the shown one. Cycle marks a group
// already on the path from the top: it is shown, not expanded again.
type treeNode struct {
	ID, Name string
	Cycle    bool
	Children []treeNode
}

type groupData struct {
	Revision uint64
	Group    authz.Group
	// Members is a page of the direct members, MemberQ its filter.
	Members      []string
	MemberQ      string
	MembersPager Pager
	Parents      []ref
	Tree         []treeNode
	TreeCut      bool
	Cycles       []string
	Roles        []ref
	RoleChoices  []ref
	// EffectiveRoles: roles members get through groups this one is
	// nested in (the extension's /roles/nested), beyond its own.
	InheritedRoles []ref
	// UserClient is the application a member's link explains the login
	// for: that of the group's first own or inherited role of a client
	// ("" when it has none: the user view asks).
	UserClient string
}

// treeLimit bounds the nested-groups tree shown (a deep, wide nesting is
// summarised rather than rendered whole).
const treeLimit = 500

func (d *Dashboard) groupData(r *http.Request, id string) (groupData, error) {
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return groupData{}, err
	}
	doc := m.Document()
	g := findGroup(doc, id)
	if g == nil {
		return groupData{}, fmt.Errorf("group %q: %w", id, runtime.ErrNotFound)
	}
	data := groupData{Revision: m.Revision(), Group: *g}
	// Members, filtered and paged.
	lq, err := ParseListQuery(r.URL.Query(), MembersPerPage)
	if err != nil {
		return groupData{}, err
	}
	var members []string
	for _, u := range g.Members {
		if lq.Match(u, "") {
			members = append(members, u)
		}
	}
	pg := radmin.Paginate(members, lq, 0)
	data.Members, data.MemberQ = pg.Items, r.URL.Query().Get("q")
	data.MembersPager = NewPager(*r.URL, pg.Page, pg.PerPage, pg.Total)

	byID := make(map[string]*authz.Group, len(doc.Groups))
	for i := range doc.Groups {
		byID[doc.Groups[i].ID] = &doc.Groups[i]
	}
	for i := range doc.Groups {
		if slices.Contains(doc.Groups[i].Nested, id) {
			data.Parents = append(data.Parents, ref{ID: doc.Groups[i].ID, Name: doc.Groups[i].Name})
		}
	}
	budget := treeLimit
	data.Tree = nestTree(byID, g, []string{id}, &budget, &data.Cycles)
	data.TreeCut = budget <= 0
	data.Cycles = slices.Compact(data.Cycles)

	roleByID := make(map[string]*authz.Role, len(doc.Roles))
	for i := range doc.Roles {
		roleByID[doc.Roles[i].ID] = &doc.Roles[i]
	}
	roleRef := func(rid string) ref {
		if ro := roleByID[rid]; ro != nil {
			return ref{ID: rid, Name: ro.Name, Note: ro.ApplicationID}
		}
		return ref{ID: rid, Name: "(missing role)", Note: ""}
	}
	for _, rid := range g.Roles {
		data.Roles = append(data.Roles, roleRef(rid))
	}
	for _, ro := range doc.Roles {
		if !slices.Contains(g.Roles, ro.ID) {
			data.RoleChoices = append(data.RoleChoices, ref{ID: ro.ID, Name: ro.Name, Note: ro.ApplicationID})
		}
	}
	sort.SliceStable(data.RoleChoices, func(i, j int) bool {
		a, b := data.RoleChoices[i], data.RoleChoices[j]
		if a.Note != b.Note {
			return a.Note < b.Note
		}
		return a.Name < b.Name
	})
	// Roles inherited from ancestors: walk up through parents.
	seen := map[string]bool{id: true}
	queue := []string{id}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for i := range doc.Groups {
			p := &doc.Groups[i]
			if seen[p.ID] || !slices.Contains(p.Nested, cur) {
				continue
			}
			seen[p.ID] = true
			queue = append(queue, p.ID)
			for _, rid := range p.Roles {
				if !slices.Contains(g.Roles, rid) {
					rf := roleRef(rid)
					rf.Note += " · from " + p.Name
					data.InheritedRoles = append(data.InheritedRoles, rf)
				}
			}
		}
	}
	for _, rf := range append(slices.Clone(data.Roles), data.InheritedRoles...) {
		if ro := roleByID[rf.ID]; ro != nil && ro.ApplicationType == authz.TypeClient {
			data.UserClient = ro.ApplicationID
			break
		}
	}
	return data, nil
}

// nestTree renders the groups nested below g, depth first. A child
// already on the path closes a cycle: it is marked and a warning names
// the loop (members of any group in it get the roles of all of them).
func nestTree(byID map[string]*authz.Group, g *authz.Group, path []string, budget *int, cycles *[]string) []treeNode {
	var out []treeNode
	for _, cid := range g.Nested {
		if *budget <= 0 {
			return out
		}
		*budget--
		child := byID[cid]
		n := treeNode{ID: cid, Name: "(missing group)"}
		if child != nil {
			n.Name = child.Name
		}
		if i := slices.Index(path, cid); i >= 0 {
			n.Cycle = true
			loop := make([]string, 0, len(path)-i+1)
			for _, id := range append(slices.Clone(path[i:]), cid) {
				name := id
				if x := byID[id]; x != nil {
					name = x.Name
				}
				loop = append(loop, name)
			}
			*cycles = append(*cycles, strings.Join(loop, " → "))
		} else if child != nil {
			n.Children = nestTree(byID, child, append(path, cid), budget, cycles)
		}
		out = append(out, n)
	}
	return out
}

func (d *Dashboard) groupShow(w http.ResponseWriter, r *http.Request, c *Call) error {
	data, err := d.groupData(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	if r.URL.Query().Get("fragment") != "" {
		d.Fragment(w, c, "group", "member-rows", data)
		return nil
	}
	d.Render(w, c, http.StatusOK, "group", "Group "+data.Group.Name, data, nil)
	return nil
}

// groupRefuse re-renders a group's page with form id refused by err.
func (d *Dashboard) groupRefuse(w http.ResponseWriter, r *http.Request, c *Call, form string, err error, fields map[string]string) error {
	id := r.PathValue("id")
	data, derr := d.groupData(r, id)
	if derr != nil {
		return derr
	}
	d.Render(w, c, errorStatus(err), "group", "Group "+data.Group.Name, data, FormError(form, r, err, fields))
	return nil
}

// groupWrite is entityWrite for a group's forms.
func (d *Dashboard) groupWrite(w http.ResponseWriter, r *http.Request, c *Call, form string, fields map[string]string,
	build func(id string) (radmin.Change, string, error)) error {
	return d.entityWrite(w, r, c, entityPage{entity: "group", idField: "id", param: "id",
		refuse: func(_ string, err error) error { return d.groupRefuse(w, r, c, form, err, fields) },
		target: func(id string, ch radmin.Change) string {
			if ch.Action == "group.delete" {
				return Prefix + "groups"
			}
			return Prefix + "groups/" + pathEscape(id)
		}}, build)
}

func (d *Dashboard) groupRename(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "rename", map[string]string{"name": "name", "description": "description"}, func(id string) (radmin.Change, string, error) {
		name, err := FormText(r.PostForm, "group", "name", 4096, true)
		if err != nil {
			return radmin.Change{}, "", err
		}
		desc, err := FormText(r.PostForm, "group", "description", 1<<16, false)
		if err != nil {
			return radmin.Change{}, "", err
		}
		return entityChange("group.update", "group", id, &authz.UpdateGroup{ID: id, Name: name, Description: desc}), "Group saved.", nil
	})
}

func (d *Dashboard) groupDelete(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "delete", nil, func(id string) (radmin.Change, string, error) {
		cascade := r.PostForm.Get("cascade") == "on"
		return entityChange("group.delete", "group", id, &authz.DeleteGroup{ID: id, Cascade: cascade}), "Group deleted.", nil
	})
}

func (d *Dashboard) groupMembersAdd(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "members", map[string]string{"members": "members"}, func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("group", "members", r.PostForm.Get("members"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("group.members.add", "group", id, "members", ids, &authz.AddGroupMembers{GroupID: id, UserIDs: ids}),
			plural(len(ids), "member") + " added.", nil
	})
}

func (d *Dashboard) groupMembersRemove(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "members", map[string]string{"members": "members"}, func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("group", "members", r.PostForm.Get("members"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("group.members.remove", "group", id, "members", ids, &authz.RemoveGroupMembers{GroupID: id, UserIDs: ids}),
			plural(len(ids), "member") + " removed.", nil
	})
}

// resolveGroups turns pasted group ids or exact names into ids, against
// the current model; a name two groups share is refused as ambiguous.
// Entries are split on lines, commas and semicolons first, so a name with
// spaces ("QA Leads") can be pasted; an entry that is no id or name is then
// read as ids separated by white space.
func (d *Dashboard) resolveGroups(r *http.Request, field, s string) ([]string, error) {
	if _, err := ParseIDList("group", field, s); err != nil {
		return nil, err
	}
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return nil, err
	}
	doc := m.Document()
	lookup := func(x string) ([]string, error) {
		if findGroup(doc, x) != nil {
			return []string{x}, nil
		}
		var hits []string
		for i := range doc.Groups {
			if strings.EqualFold(doc.Groups[i].Name, x) {
				hits = append(hits, doc.Groups[i].ID)
			}
		}
		if len(hits) > 1 {
			return nil, fieldError("group", field, fmt.Sprintf("%d groups are named %q: give the id", len(hits), clip(x)))
		}
		return hits, nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	entries := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' || r == '\r' })
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		hits, err := lookup(e)
		if err != nil {
			return nil, err
		}
		if len(hits) == 1 {
			add(hits[0])
			continue
		}
		for _, x := range strings.Fields(e) {
			hits, err := lookup(x)
			if err != nil {
				return nil, err
			}
			if len(hits) == 0 {
				return nil, fieldError("group", field, fmt.Sprintf("no group has the id or name %q", clip(e)))
			}
			add(hits[0])
		}
	}
	return out, nil
}

func (d *Dashboard) groupNestedAdd(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "nested", map[string]string{"nested": "nested"}, func(id string) (radmin.Change, string, error) {
		ids, err := d.resolveGroups(r, "nested", r.PostForm.Get("nested"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("group.nested.add", "group", id, "nested", ids, &authz.AddNestedGroups{GroupID: id, GroupIDs: ids}),
			plural(len(ids), "group") + " nested.", nil
	})
}

func (d *Dashboard) groupNestedRemove(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "nested", map[string]string{"nested": "nested"}, func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("group", "nested", r.PostForm.Get("nested"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("group.nested.remove", "group", id, "nested", ids, &authz.RemoveNestedGroups{GroupID: id, GroupIDs: ids}),
			plural(len(ids), "nested group") + " removed.", nil
	})
}

func (d *Dashboard) groupRolesAdd(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "roles", map[string]string{"roles": "roles"}, func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("group", "roles", strings.Join(r.PostForm["roles"], "\n"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("group.roles.add", "group", id, "roles", ids, &authz.AddGroupRoles{GroupID: id, RoleIDs: ids}),
			plural(len(ids), "role") + " added.", nil
	})
}

func (d *Dashboard) groupRolesRemove(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "roles", map[string]string{"roles": "roles"}, func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("group", "roles", strings.Join(r.PostForm["roles"], "\n"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("group.roles.remove", "group", id, "roles", ids, &authz.RemoveGroupRoles{GroupID: id, RoleIDs: ids}),
			plural(len(ids), "role") + " removed.", nil
	})
}

func (d *Dashboard) groupMappingsAdd(w http.ResponseWriter, r *http.Request, c *Call) error {
	fields := map[string]string{"mappings[0].groupName": "groupName", "mappings[0].connectionName": "connectionName"}
	return d.groupWrite(w, r, c, "mappings", fields, func(id string) (radmin.Change, string, error) {
		// The form's fields are named as the service names the first
		// mapping's, so both kinds of error land on the same field.
		gn, err := FormText(r.PostForm, "group", "groupName", 4096, true)
		if err != nil {
			return radmin.Change{}, "", renameField(err, "mappings[0].groupName")
		}
		cn, err := FormText(r.PostForm, "group", "connectionName", 4096, true)
		if err != nil {
			return radmin.Change{}, "", renameField(err, "mappings[0].connectionName")
		}
		// Audited with the whole group, as the API's mapping add.
		return entityChange("group.mappings.add", "group", id, &authz.AddGroupMappings{GroupID: id,
			Mappings: []authz.Mapping{{ID: authz.NewID(), GroupName: gn, ConnectionName: cn}}}), "Mapping added.", nil
	})
}

func (d *Dashboard) groupMappingsRemove(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.groupWrite(w, r, c, "mappings", nil, func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("group", "mapping", r.PostForm.Get("mapping"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("group.mappings.remove", "group", id, "mappings", ids, &authz.RemoveGroupMappings{GroupID: id, MappingIDs: ids}),
			"Mapping removed.", nil
	})
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// renameField points a validation error at another field name.
func renameField(err error, field string) error {
	var ve *runtime.ValidationError
	if errors.As(err, &ve) {
		c := *ve
		c.Field = field
		return &c
	}
	return err
}
