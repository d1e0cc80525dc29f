package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// adminUsers serves /api/users/{id}/…: a user's direct and effective
// groups, direct and effective roles, the resolved policy for a client,
// and adding to / removing from groups and roles (removal from groups is
// what the extension lacked).
type adminUsers struct{ *adminCore }

// userState is the audited view of a user: the groups and roles that list
// them directly.
type userView struct {
	UserID string   `json:"user_id"`
	Groups []string `json:"groups"`
	Roles  []string `json:"roles"`
}

func userState(id string) audited {
	return audited{fp: authz.Footprint{MemberOf: []string{id}, RolesOfUsers: []string{id}}, render: func(doc *authz.Document) any {
		v := userView{UserID: id, Groups: []string{}, Roles: []string{}}
		for _, g := range doc.Groups {
			if slices.Contains(g.Members, id) {
				v.Groups = append(v.Groups, g.ID)
			}
		}
		for _, r := range doc.Roles {
			if slices.Contains(r.Users, id) {
				v.Roles = append(v.Roles, r.ID)
			}
		}
		return v
	}}
}

// directGroups returns the indexes of the groups listing the user.
func directGroups(doc *authz.Document, user string) []int {
	var out []int
	for i := range doc.Groups {
		if slices.Contains(doc.Groups[i].Members, user) {
			out = append(out, i)
		}
	}
	return out
}

// effectiveGroups is direct ∪ every ancestor, in storage order (the
// extension's /groups/calculate; mappings need a login's connection and
// IdP groups, see /policy).
func effectiveGroups(doc *authz.Document, user string) []int {
	set := map[int]bool{}
	for _, d := range directGroups(doc, user) {
		for _, gi := range groupClosure(doc, d, true) {
			set[gi] = true
		}
	}
	out := make([]int, 0, len(set))
	for gi := range set {
		out = append(out, gi)
	}
	slices.Sort(out)
	return out
}

func (h adminUsers) groupList(w http.ResponseWriter, r *http.Request, effective bool) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	doc := m.Document()
	user := r.PathValue("id")
	idx := directGroups(doc, user)
	if effective {
		idx = effectiveGroups(doc, user)
	}
	out := []groupRef{}
	for _, gi := range idx {
		g := &doc.Groups[gi]
		if lq.Match(g.Name, g.Description) {
			out = append(out, refOf(g))
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("groups", out, lq))
	return nil
}

func (h adminUsers) groups(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	return h.groupList(w, r, false)
}

func (h adminUsers) groupsCalculate(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	return h.groupList(w, r, true)
}

// groupRefs names the records resolveGroupRefs needs.
func groupRefs(refs []string) authz.Footprint {
	return authz.Footprint{Groups: refs, GroupNames: refs}
}

// resolveGroupRefs maps the body of PATCH/DELETE /api/users/{id}/groups to
// group ids: each entry is a group _id or, as the extension accepts, a
// group name (exact). doc holds at least the records of groupRefs(refs).
func resolveGroupRefs(doc *authz.Document, refs []string) ([]string, error) {
	out := make([]string, 0, len(refs))
	for i, ref := range refs {
		if ref == "" {
			return nil, &runtime.ValidationError{Entity: "user", Field: fmt.Sprintf("groups[%d]", i), Reason: "is empty"}
		}
		if g, err := findGroup(doc, ref); err == nil {
			out = append(out, g.ID)
			continue
		}
		found := ""
		for _, g := range doc.Groups {
			if g.Name == ref {
				if found != "" {
					return nil, fmt.Errorf("groups[%d]: %q names more than one group (%s, %s); use the _id: %w", i, ref, found, g.ID, runtime.ErrConflict)
				}
				found = g.ID
			}
		}
		if found == "" {
			return nil, fmt.Errorf("groups[%d]: group %q (neither an _id nor a name): %w", i, ref, runtime.ErrNotFound)
		}
		out = append(out, found)
	}
	return out, nil
}

func (h adminUsers) addGroups(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	user := r.PathValue("id")
	refs, err := h.idList(w, r, "user", "groups")
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return &runtime.ValidationError{Entity: "user", ID: user, Field: "groups", Reason: "is empty: nothing to change"}
	}
	res, err := h.writeWith(r, c, groupRefs(refs), func(view *authz.Document) (adminChange, error) {
		ids, err := resolveGroupRefs(view, refs)
		if err != nil {
			return adminChange{}, err
		}
		ops := make([]authz.Op, len(ids))
		for i, gid := range ids {
			ops[i] = &authz.AddGroupMembers{GroupID: gid, UserIDs: []string{user}}
		}
		return adminChange{action: "user.groups.add", entity: "user", id: user, state: userState(user), ops: ops}, nil
	})
	if err != nil {
		return err
	}
	return noContent(w, res)
}

// removeGroups removes the user from the listed groups, or from every group
// with ?all=true and no body (an empty list is refused so a client bug
// cannot strip all memberships).
func (h adminUsers) removeGroups(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	user := r.PathValue("id")
	all, err := boolQuery(r, "all")
	if err != nil {
		return err
	}
	var refs []string
	if !all {
		if refs, err = h.idList(w, r, "user", "groups"); err != nil {
			return err
		}
		if len(refs) == 0 {
			return &runtime.ValidationError{Entity: "user", ID: user, Field: "groups",
				Reason: "is empty: list the groups, or use ?all=true to remove the user from every group"}
		}
	} else if r.ContentLength > 0 {
		return &runtime.ValidationError{Entity: "user", ID: user, Field: "body", Reason: "must be empty with ?all=true"}
	}
	res, err := h.writeWith(r, c, groupRefs(refs), func(view *authz.Document) (adminChange, error) {
		var ids []string
		if !all {
			var err error
			if ids, err = resolveGroupRefs(view, refs); err != nil {
				return adminChange{}, err
			}
		}
		return adminChange{action: "user.groups.remove", entity: "user", id: user, state: userState(user),
			ops: []authz.Op{&authz.RemoveUserFromGroups{UserID: user, GroupIDs: ids}}}, nil
	})
	if err != nil {
		return err
	}
	return noContent(w, res)
}

// roleView is a role in a user's role lists (the extension's shape).
type roleView struct {
	ID              string `json:"_id"`
	Name            string `json:"name"`
	Description     string `json:"description,omitempty"`
	ApplicationType string `json:"applicationType,omitempty"`
	ApplicationID   string `json:"applicationId"`
}

func (h adminUsers) roleList(w http.ResponseWriter, r *http.Request, effective bool) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	appID, _ := appFilter(r)
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	doc := m.Document()
	user := r.PathValue("id")
	var fromGroups []string
	if effective {
		for _, gi := range effectiveGroups(doc, user) {
			fromGroups = append(fromGroups, doc.Groups[gi].Roles...)
		}
	}
	out := []roleView{}
	for _, role := range doc.Roles {
		if !slices.Contains(role.Users, user) && !slices.Contains(fromGroups, role.ID) {
			continue
		}
		if lq.Match(role.Name, role.Description) && (appID == "" || role.ApplicationID == appID) {
			out = append(out, roleView{ID: role.ID, Name: role.Name, Description: role.Description,
				ApplicationType: role.ApplicationType, ApplicationID: role.ApplicationID})
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("roles", out, lq))
	return nil
}

func (h adminUsers) roles(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	return h.roleList(w, r, false)
}

func (h adminUsers) rolesCalculate(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	return h.roleList(w, r, true)
}

func (h adminUsers) addRoles(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.rolesWrite(w, r, c, "user.roles.add", func(rid, user string) authz.Op {
		return &authz.AddRoleUsers{RoleID: rid, UserIDs: []string{user}}
	})
}

func (h adminUsers) removeRoles(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.rolesWrite(w, r, c, "user.roles.remove", func(rid, user string) authz.Op {
		return &authz.RemoveRoleUsers{RoleID: rid, UserIDs: []string{user}}
	})
}

func (h adminUsers) rolesWrite(w http.ResponseWriter, r *http.Request, c *adminCall, action string, op func(rid, user string) authz.Op) error {
	user := r.PathValue("id")
	ids, err := h.idList(w, r, "user", "roles")
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return &runtime.ValidationError{Entity: "user", ID: user, Field: "roles", Reason: "is empty: nothing to change"}
	}
	for i, id := range ids {
		if id == "" {
			return &runtime.ValidationError{Entity: "user", ID: user, Field: fmt.Sprintf("roles[%d]", i), Reason: "is empty"}
		}
	}
	ops := make([]authz.Op, len(ids))
	for i, rid := range ids {
		ops[i] = op(rid, user)
	}
	res, err := h.write(r, c, adminChange{action: action, entity: "user", id: user, state: userState(user), ops: ops})
	if err != nil {
		return err
	}
	return noContent(w, res)
}

// policy resolves what a login of this user at a client would get:
// GET /api/users/{id}/policy?client_id=…[&audience=…&connection=…&groups=a,b].
// It is the read-only twin of the extension's POST policy endpoint, for
// admins checking a change.
func (h adminUsers) policy(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	q := r.URL.Query()
	client := q.Get("client_id")
	if client == "" {
		return &runtime.ValidationError{Entity: "query", Field: "client_id", Reason: "is required"}
	}
	var idpGroups []string
	if g := q.Get("groups"); g != "" {
		for _, s := range strings.Split(g, ",") {
			if s = strings.TrimSpace(s); s != "" {
				idpGroups = append(idpGroups, s)
			}
		}
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	p := m.Resolve(authz.PolicyQuery{UserID: r.PathValue("id"), ClientID: client, Audience: q.Get("audience"),
		Connection: q.Get("connection"), IdPGroups: idpGroups})
	hooks.WriteJSON(w, http.StatusOK, p)
	return nil
}
