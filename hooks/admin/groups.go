package admin

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// adminGroups serves /api/groups and its members, nested groups, roles and
// mappings, on the extension's paths.
type adminGroups struct{ *adminCore }

// groupBody is the body of POST /api/groups and PUT /api/groups/{id}. _id is
// optional on create: a client that sends one makes a retried create
// recognisable (409 instead of a duplicate).
type groupBody struct {
	ID          *string `json:"_id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
}

// mappingBody is one element of PATCH /api/groups/{id}/mappings.
type mappingBody struct {
	GroupName      string `json:"groupName"`
	ConnectionName string `json:"connectionName"`
}

// groupRef is how the extension shows a group inside other answers.
type groupRef struct {
	ID          string `json:"_id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

func refOf(g *authz.Group) groupRef {
	return groupRef{ID: g.ID, Name: g.Name, Description: g.Description}
}

// findGroup returns a group of the document by id.
func findGroup(doc *authz.Document, id string) (*authz.Group, error) {
	for i := range doc.Groups {
		if doc.Groups[i].ID == id {
			return &doc.Groups[i], nil
		}
	}
	return nil, fmt.Errorf("group %q: %w", id, runtime.ErrNotFound)
}

func groupState(id string) audited {
	return audited{fp: authz.Footprint{Groups: []string{id}}, render: func(doc *authz.Document) any {
		if g, err := findGroup(doc, id); err == nil {
			return g
		}
		return nil
	}}
}

// groupClosure walks nesting from start: down through children (nested)
// or up through parents. It is cycle-safe and returns group indexes in
// walk order, start first.
func groupClosure(doc *authz.Document, start int, up bool) []int {
	byID := make(map[string]int, len(doc.Groups))
	for i := range doc.Groups {
		if _, dup := byID[doc.Groups[i].ID]; !dup {
			byID[doc.Groups[i].ID] = i
		}
	}
	var parents map[int][]int
	if up {
		parents = map[int][]int{}
		for i := range doc.Groups {
			for _, child := range doc.Groups[i].Nested {
				if ci, ok := byID[child]; ok {
					parents[ci] = append(parents[ci], i)
				}
			}
		}
	}
	seen := map[int]bool{start: true}
	out := []int{start}
	for q := 0; q < len(out); q++ {
		var next []int
		if up {
			next = parents[out[q]]
		} else {
			for _, child := range doc.Groups[out[q]].Nested {
				if ci, ok := byID[child]; ok {
					next = append(next, ci)
				}
			}
		}
		for _, n := range next {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

func groupIndex(doc *authz.Document, id string) (int, error) {
	for i := range doc.Groups {
		if doc.Groups[i].ID == id {
			return i, nil
		}
	}
	return -1, fmt.Errorf("group %q: %w", id, runtime.ErrNotFound)
}

func (h adminGroups) list(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	page, err := h.svc.Groups(r.Context(), lq)
	return writePage(w, r, "groups", page, err)
}

func (h adminGroups) get(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	g, err := findGroup(m.Document(), r.PathValue("id"))
	if err != nil {
		return err
	}
	hooks.WriteJSON(w, http.StatusOK, g)
	return nil
}

func (h adminGroups) create(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	var b groupBody
	if err := h.decodeBody(w, r, "group", &b); err != nil {
		return err
	}
	id, err := bodyID("group", b.ID)
	if err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "group.create", entity: "group", id: id, state: groupState(id),
		ops: []authz.Op{&authz.CreateGroup{ID: id, Name: b.Name, Description: b.Description}}})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/groups/"+id)
	return writeEntity(w, http.StatusCreated, res, groupState(id).of(res.after))
}

func (h adminGroups) update(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("id")
	var b groupBody
	if err := h.decodeBody(w, r, "group", &b); err != nil {
		return err
	}
	if err := samePathID("group", id, b.ID); err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "group.update", entity: "group", id: id, state: groupState(id),
		ops: []authz.Op{&authz.UpdateGroup{ID: id, Name: b.Name, Description: b.Description}}})
	if err != nil {
		return err
	}
	return writeEntity(w, http.StatusOK, res, groupState(id).of(res.after))
}

func (h adminGroups) delete(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("id")
	cascade, err := boolQuery(r, "cascade")
	if err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "group.delete", entity: "group", id: id, state: groupState(id),
		ops: []authz.Op{&authz.DeleteGroup{ID: id, Cascade: cascade}}})
	if err != nil {
		return err
	}
	return noContent(w, res)
}

// userRef is a user in member lists: claimsmith keeps no user directory, so
// a member is its user_id.
type userRef struct {
	UserID string `json:"user_id"`
}

func (h adminGroups) members(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	g, err := findGroup(m.Document(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []userRef{}
	for _, u := range g.Members {
		if lq.Match(u, "") {
			out = append(out, userRef{UserID: u})
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("users", out, lq))
	return nil
}

// nestedMember is an effective member: the user and the group (this one or
// a descendant) that lists it, as the extension's /members/nested.
type nestedMember struct {
	User  userRef  `json:"user"`
	Group groupRef `json:"group"`
}

// nestedMembers lists everyone who is a member through this group or any
// group nested below it, each user once (with the nearest group).
func (h adminGroups) nestedMembers(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	doc := m.Document()
	start, err := groupIndex(doc, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []nestedMember{}
	seen := map[string]bool{}
	for _, gi := range groupClosure(doc, start, false) {
		g := &doc.Groups[gi]
		for _, u := range g.Members {
			if seen[u] || !lq.Match(u, "") {
				continue
			}
			seen[u] = true
			out = append(out, nestedMember{User: userRef{UserID: u}, Group: refOf(g)})
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("users", out, lq))
	return nil
}

func (h adminGroups) addMembers(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.groupIDsWrite(w, r, c, "members", "group.members.add", func(id string, ids []string) authz.Op {
		return &authz.AddGroupMembers{GroupID: id, UserIDs: ids}
	})
}

func (h adminGroups) removeMembers(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.groupIDsWrite(w, r, c, "members", "group.members.remove", func(id string, ids []string) authz.Op {
		return &authz.RemoveGroupMembers{GroupID: id, UserIDs: ids}
	})
}

func (h adminGroups) addNested(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.groupIDsWrite(w, r, c, "nested", "group.nested.add", func(id string, ids []string) authz.Op {
		return &authz.AddNestedGroups{GroupID: id, GroupIDs: ids}
	})
}

func (h adminGroups) removeNested(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.groupIDsWrite(w, r, c, "nested", "group.nested.remove", func(id string, ids []string) authz.Op {
		return &authz.RemoveNestedGroups{GroupID: id, GroupIDs: ids}
	})
}

func (h adminGroups) addRoles(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.groupIDsWrite(w, r, c, "roles", "group.roles.add", func(id string, ids []string) authz.Op {
		return &authz.AddGroupRoles{GroupID: id, RoleIDs: ids}
	})
}

func (h adminGroups) removeRoles(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.groupIDsWrite(w, r, c, "roles", "group.roles.remove", func(id string, ids []string) authz.Op {
		return &authz.RemoveGroupRoles{GroupID: id, RoleIDs: ids}
	})
}

func (h adminGroups) removeMappings(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.groupIDsWrite(w, r, c, "mappings", "group.mappings.remove", func(id string, ids []string) authz.Op {
		return &authz.RemoveGroupMappings{GroupID: id, MappingIDs: ids}
	})
}

// groupIDsWrite is a PATCH or DELETE whose body is an array of ids.
func (h adminGroups) groupIDsWrite(w http.ResponseWriter, r *http.Request, c *adminCall, field, action string, op func(string, []string) authz.Op) error {
	return h.idsWrite(w, r, c, "group", field, action, groupState, op)
}

func (h adminGroups) nested(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	doc := m.Document()
	g, err := findGroup(doc, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []authz.Group{}
	for _, child := range g.Nested {
		if c, err := findGroup(doc, child); err == nil && lq.Match(c.Name, c.Description) {
			out = append(out, *c)
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("groups", out, lq))
	return nil
}

func (h adminGroups) roles(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	doc := m.Document()
	g, err := findGroup(doc, r.PathValue("id"))
	if err != nil {
		return err
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("roles", rolesByID(doc, g.Roles, lq), lq))
	return nil
}

// nestedRoles lists the roles members of this group get: its own and those
// of every group it is nested in (the extension's /roles/nested).
func (h adminGroups) nestedRoles(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	doc := m.Document()
	start, err := groupIndex(doc, r.PathValue("id"))
	if err != nil {
		return err
	}
	var ids []string
	for _, gi := range groupClosure(doc, start, true) {
		for _, rid := range doc.Groups[gi].Roles {
			if !slices.Contains(ids, rid) {
				ids = append(ids, rid)
			}
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("roles", rolesByID(doc, ids, lq), lq))
	return nil
}

// rolesByID returns the roles with the given ids, in storage order,
// skipping dangling ids.
func rolesByID(doc *authz.Document, ids []string, lq listQuery) []authz.Role {
	out := []authz.Role{}
	for _, role := range doc.Roles {
		if slices.Contains(ids, role.ID) && lq.Match(role.Name, role.Description) {
			out = append(out, role)
		}
	}
	return out
}

func (h adminGroups) mappings(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	g, err := findGroup(m.Document(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []authz.Mapping{}
	for _, mp := range g.Mappings {
		if lq.Match(mp.GroupName, mp.ConnectionName) {
			out = append(out, mp)
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("mappings", out, lq))
	return nil
}

// addMappings creates mappings (each gets a new _id, as the extension does).
func (h adminGroups) addMappings(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("id")
	var body []mappingBody
	if err := h.decodeBody(w, r, "group", &body); err != nil {
		return err
	}
	if len(body) == 0 {
		return &runtime.ValidationError{Entity: "group", ID: id, Field: "mappings", Reason: "is empty: send an array of {groupName, connectionName}"}
	}
	maps := make([]authz.Mapping, len(body))
	for i, b := range body {
		maps[i] = authz.Mapping{ID: authz.NewID(), GroupName: b.GroupName, ConnectionName: b.ConnectionName}
	}
	res, err := h.write(r, c, adminChange{action: "group.mappings.add", entity: "group", id: id, state: groupState(id),
		ops: []authz.Op{&authz.AddGroupMappings{GroupID: id, Mappings: maps}}})
	if err != nil {
		return err
	}
	return noContent(w, res)
}
