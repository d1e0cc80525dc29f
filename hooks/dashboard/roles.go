package dashboard

import (
	"fmt"
	"net/http"
	"slices"
	"sort"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The roles and permissions page: per application (a client_id) and per
// API (an audience, applicationType resource_server). Roles and
// permissions are listed for the chosen application, created, renamed
// and deleted (with the rule: a role used by groups, a permission used by
// roles, is only deleted together with those references); a role's page
// grants and revokes permissions and assigns it directly to users.

// RolesPerPage is the roles list's page size.
const RolesPerPage = 50

func (d *Dashboard) rolesPage() Page {
	w := radmin.ScopeWrite
	return Page{Name: "roles", Title: "Roles & permissions", Href: Prefix + "roles", Views: []string{"role", "permission"}, Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "roles", Handle: d.rolesList},
		{Method: http.MethodPost, Path: Prefix + "roles", Scope: w, Handle: d.roleCreate},
		{Method: http.MethodGet, Path: Prefix + "roles/{id}", Handle: d.roleShow},
		{Method: http.MethodPost, Path: Prefix + "roles/{id}/rename", Scope: w, Handle: d.roleRename},
		{Method: http.MethodPost, Path: Prefix + "roles/{id}/delete", Scope: w, Handle: d.roleDelete},
		{Method: http.MethodPost, Path: Prefix + "roles/{id}/permissions/add", Scope: w, Handle: d.rolePermsAdd},
		{Method: http.MethodPost, Path: Prefix + "roles/{id}/permissions/remove", Scope: w, Handle: d.rolePermsRemove},
		{Method: http.MethodPost, Path: Prefix + "roles/{id}/users/add", Scope: w, Handle: d.roleUsersAdd},
		{Method: http.MethodPost, Path: Prefix + "roles/{id}/users/remove", Scope: w, Handle: d.roleUsersRemove},
		{Method: http.MethodPost, Path: Prefix + "permissions", Scope: w, Handle: d.permCreate},
		{Method: http.MethodGet, Path: Prefix + "permissions/{id}", Handle: d.permShow},
		{Method: http.MethodPost, Path: Prefix + "permissions/{id}/rename", Scope: w, Handle: d.permRename},
		{Method: http.MethodPost, Path: Prefix + "permissions/{id}/delete", Scope: w, Handle: d.permDelete},
	}}
}

// appRef is an application roles and permissions belong to.
type appRef struct {
	ID, Type, Name string
	Selected       bool
}

type roleRow struct {
	ID, Name, Description, App, Type string
	Permissions, Users, Groups       int
}

type permRow struct {
	ID, Name, Description, App, Type string
	Roles                            int
}

type rolesData struct {
	Revision  uint64
	Q, App    string
	Apps      []appRef
	Rows      []roleRow
	Pager     Pager
	Perms     []permRow
	AppType   string
	AppIDs    []string
	AppKnown  bool
	TypeNames []string
}

// applications lists every application roles, permissions or the
// registry name, with its type (resource_server when a role or
// permission says so).
func applications(doc *authz.Document, selected string) []appRef {
	byID := map[string]*appRef{}
	var order []string
	add := func(id, typ, name string) {
		if id == "" {
			return
		}
		a := byID[id]
		if a == nil {
			a = &appRef{ID: id, Type: typ}
			byID[id] = a
			order = append(order, id)
		}
		if a.Type == "" || typ == "resource_server" {
			a.Type = typ
		}
		if name != "" {
			a.Name = name
		}
	}
	if doc.Claimsmith != nil {
		for _, a := range doc.Claimsmith.Applications {
			add(a.ClientID, "client", a.Name)
		}
	}
	for _, r := range doc.Roles {
		add(r.ApplicationID, r.ApplicationType, "")
	}
	for _, p := range doc.Permissions {
		add(p.ApplicationID, p.ApplicationType, "")
	}
	sort.Strings(order)
	out := make([]appRef, len(order))
	for i, id := range order {
		out[i] = *byID[id]
		out[i].Selected = id == selected
	}
	return out
}

func (d *Dashboard) rolesData(r *http.Request) (rolesData, error) {
	q := r.URL.Query()
	lq, err := ParseListQuery(q, RolesPerPage)
	if err != nil {
		return rolesData{}, err
	}
	app := q.Get("app")
	if app != "" {
		if err := authz.CheckID("role", "app", app); err != nil {
			return rolesData{}, err
		}
	}
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return rolesData{}, err
	}
	doc := m.Document()
	data := rolesData{Revision: m.Revision(), Q: q.Get("q"), App: app, Apps: applications(doc, app)}
	for _, a := range data.Apps {
		data.AppIDs = append(data.AppIDs, a.ID)
		if a.ID == app {
			data.AppType, data.AppKnown = a.Type, true
		}
	}
	usedByGroups := map[string]int{}
	for _, g := range doc.Groups {
		for _, rid := range g.Roles {
			usedByGroups[rid]++
		}
	}
	var rows []roleRow
	for _, ro := range doc.Roles {
		if (app == "" || ro.ApplicationID == app) && lq.Match(ro.Name, ro.Description) {
			rows = append(rows, roleRow{ID: ro.ID, Name: ro.Name, Description: ro.Description, App: ro.ApplicationID, Type: ro.ApplicationType,
				Permissions: len(ro.Permissions), Users: len(ro.Users), Groups: usedByGroups[ro.ID]})
		}
	}
	pg := radmin.Paginate(rows, lq, m.Revision())
	data.Rows = pg.Items
	data.Pager = NewPager(*r.URL, pg.Page, pg.PerPage, pg.Total)
	usedByRoles := map[string]int{}
	for _, ro := range doc.Roles {
		for _, pid := range ro.Permissions {
			usedByRoles[pid]++
		}
	}
	if app != "" {
		for _, p := range doc.Permissions {
			if p.ApplicationID == app {
				data.Perms = append(data.Perms, permRow{ID: p.ID, Name: p.Name, Description: p.Description, App: p.ApplicationID,
					Type: p.ApplicationType, Roles: usedByRoles[p.ID]})
			}
		}
	}
	return data, nil
}

func (d *Dashboard) rolesList(w http.ResponseWriter, r *http.Request, c *Call) error {
	data, err := d.rolesData(r)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("fragment") != "" {
		d.Fragment(w, c, "roles", "role-rows", data)
		return nil
	}
	d.Render(w, c, http.StatusOK, "roles", "Roles & permissions", data, nil)
	return nil
}

var entityFields = map[string]string{"name": "name", "description": "description", "applicationId": "applicationId", "applicationType": "applicationType"}

func (d *Dashboard) rolesRefuse(w http.ResponseWriter, r *http.Request, c *Call, form string, err error) error {
	// The list the form was on: its application filter came along.
	r.URL.RawQuery = "app=" + urlQueryEscape(r.PostForm.Get("applicationId"))
	data, lerr := d.rolesData(r)
	if lerr != nil {
		return lerr
	}
	d.Render(w, c, errorStatus(err), "roles", "Roles & permissions", data, FormError(form, r, err, entityFields))
	return nil
}

// appForm reads the application fields of a role or permission form.
func appForm(r *http.Request, entity string) (name, desc, appID, appType string, err error) {
	if name, err = FormText(r.PostForm, entity, "name", 4096, true); err != nil {
		return
	}
	if desc, err = FormText(r.PostForm, entity, "description", 1<<16, false); err != nil {
		return
	}
	if appID, err = FormText(r.PostForm, entity, "applicationId", 4096, true); err != nil {
		return
	}
	appType = r.PostForm.Get("applicationType")
	if appType != "client" && appType != "resource_server" {
		err = fieldError(entity, "applicationType", "must be client (an application) or resource_server (an API)")
	}
	return
}

func (d *Dashboard) roleCreate(w http.ResponseWriter, r *http.Request, c *Call) error {
	if err := parseForm(r); err != nil {
		return d.rolesRefuse(w, r, c, "role-create", err)
	}
	name, desc, appID, appType, err := appForm(r, "role")
	if err != nil {
		return d.rolesRefuse(w, r, c, "role-create", err)
	}
	id := authz.NewID()
	op := &authz.CreateRole{ID: id, Name: name, Description: desc, ApplicationID: appID, ApplicationType: appType}
	if _, err := d.apply(r, c, entityChange("role.create", "role", id, op), radmin.IfMatch{}); err != nil {
		return d.rolesRefuse(w, r, c, "role-create", err)
	}
	d.redirectFlash(w, r, Prefix+"roles/"+pathEscape(id), fmt.Sprintf("Role %q created.", name))
	return nil
}

func (d *Dashboard) permCreate(w http.ResponseWriter, r *http.Request, c *Call) error {
	if err := parseForm(r); err != nil {
		return d.rolesRefuse(w, r, c, "perm-create", err)
	}
	name, desc, appID, appType, err := appForm(r, "permission")
	if err != nil {
		return d.rolesRefuse(w, r, c, "perm-create", err)
	}
	id := authz.NewID()
	op := &authz.CreatePermission{ID: id, Name: name, Description: desc, ApplicationID: appID, ApplicationType: appType}
	if _, err := d.apply(r, c, entityChange("permission.create", "permission", id, op), radmin.IfMatch{}); err != nil {
		return d.rolesRefuse(w, r, c, "perm-create", err)
	}
	d.redirectFlash(w, r, Prefix+"roles?app="+urlQueryEscape(appID), fmt.Sprintf("Permission %q created.", name))
	return nil
}

// ---- one role ----

type roleData struct {
	Revision    uint64
	Role        authz.Role
	Perms       []ref
	PermChoices []ref
	Users       []string
	UserQ       string
	UsersPager  Pager
	Groups      []ref
}

func (d *Dashboard) roleData(r *http.Request, id string) (roleData, error) {
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return roleData{}, err
	}
	doc := m.Document()
	ro := findRole(doc, id)
	if ro == nil {
		return roleData{}, fmt.Errorf("role %q: %w", id, runtime.ErrNotFound)
	}
	data := roleData{Revision: m.Revision(), Role: *ro}
	for _, p := range doc.Permissions {
		switch {
		case slices.Contains(ro.Permissions, p.ID):
			data.Perms = append(data.Perms, ref{ID: p.ID, Name: p.Name, Note: p.Description})
		case p.ApplicationID == ro.ApplicationID:
			data.PermChoices = append(data.PermChoices, ref{ID: p.ID, Name: p.Name, Note: p.Description})
		}
	}
	for _, pid := range ro.Permissions {
		if findPermission(doc, pid) == nil {
			data.Perms = append(data.Perms, ref{ID: pid, Name: "(missing permission)"})
		}
	}
	for _, g := range doc.Groups {
		if slices.Contains(g.Roles, id) {
			data.Groups = append(data.Groups, ref{ID: g.ID, Name: g.Name})
		}
	}
	lq, err := ParseListQuery(r.URL.Query(), MembersPerPage)
	if err != nil {
		return roleData{}, err
	}
	var users []string
	for _, u := range ro.Users {
		if lq.Match(u, "") {
			users = append(users, u)
		}
	}
	pg := radmin.Paginate(users, lq, 0)
	data.Users, data.UserQ = pg.Items, r.URL.Query().Get("q")
	data.UsersPager = NewPager(*r.URL, pg.Page, pg.PerPage, pg.Total)
	return data, nil
}

func (d *Dashboard) roleShow(w http.ResponseWriter, r *http.Request, c *Call) error {
	data, err := d.roleData(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.Render(w, c, http.StatusOK, "role", "Role "+data.Role.Name, data, nil)
	return nil
}

// roleWrite is entityWrite for a role's forms.
func (d *Dashboard) roleWrite(w http.ResponseWriter, r *http.Request, c *Call, form string, build func(id string) (radmin.Change, string, error)) error {
	return d.entityWrite(w, r, c, entityPage{entity: "role", idField: "id", param: "id",
		refuse: func(id string, err error) error {
			data, derr := d.roleData(r, id)
			if derr != nil {
				return derr
			}
			d.Render(w, c, errorStatus(err), "role", "Role "+data.Role.Name, data, FormError(form, r, err, map[string]string{
				"name": "name", "description": "description", "permissions": "permissions", "users": "users"}))
			return nil
		},
		target: func(id string, ch radmin.Change) string {
			if ch.Action == "role.delete" {
				return Prefix + "roles"
			}
			return Prefix + "roles/" + pathEscape(id)
		}}, build)
}

func (d *Dashboard) roleRename(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.roleWrite(w, r, c, "rename", func(id string) (radmin.Change, string, error) {
		name, desc, appID, appType, err := appForm(r, "role")
		if err != nil {
			return radmin.Change{}, "", err
		}
		return entityChange("role.update", "role", id, &authz.UpdateRole{ID: id, Name: name, Description: desc,
			ApplicationID: appID, ApplicationType: appType}), "Role saved.", nil
	})
}

func (d *Dashboard) roleDelete(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.roleWrite(w, r, c, "delete", func(id string) (radmin.Change, string, error) {
		return entityChange("role.delete", "role", id, &authz.DeleteRole{ID: id, Cascade: r.PostForm.Get("cascade") == "on"}), "Role deleted.", nil
	})
}

func (d *Dashboard) rolePermsAdd(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.roleWrite(w, r, c, "permissions", func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("role", "permissions", joinValues(r.PostForm["permissions"]))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("role.permissions.add", "role", id, "permissions", ids, &authz.AddRolePermissions{RoleID: id, PermissionIDs: ids}),
			plural(len(ids), "permission") + " granted.", nil
	})
}

func (d *Dashboard) rolePermsRemove(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.roleWrite(w, r, c, "permissions", func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("role", "permissions", joinValues(r.PostForm["permissions"]))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("role.permissions.remove", "role", id, "permissions", ids, &authz.RemoveRolePermissions{RoleID: id, PermissionIDs: ids}),
			plural(len(ids), "permission") + " revoked.", nil
	})
}

func (d *Dashboard) roleUsersAdd(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.roleWrite(w, r, c, "users", func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("role", "users", r.PostForm.Get("users"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("role.users.add", "role", id, "users", ids, &authz.AddRoleUsers{RoleID: id, UserIDs: ids}),
			plural(len(ids), "user") + " assigned.", nil
	})
}

func (d *Dashboard) roleUsersRemove(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.roleWrite(w, r, c, "users", func(id string) (radmin.Change, string, error) {
		ids, err := ParseIDList("role", "users", r.PostForm.Get("users"))
		if err != nil {
			return radmin.Change{}, "", err
		}
		return listChange("role.users.remove", "role", id, "users", ids, &authz.RemoveRoleUsers{RoleID: id, UserIDs: ids}),
			plural(len(ids), "user") + " unassigned.", nil
	})
}

// ---- one permission ----

type permData struct {
	Revision   uint64
	Permission authz.Permission
	Roles      []ref
}

func (d *Dashboard) permData(r *http.Request, id string) (permData, error) {
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return permData{}, err
	}
	doc := m.Document()
	p := findPermission(doc, id)
	if p == nil {
		return permData{}, fmt.Errorf("permission %q: %w", id, runtime.ErrNotFound)
	}
	data := permData{Revision: m.Revision(), Permission: *p}
	for _, ro := range doc.Roles {
		if slices.Contains(ro.Permissions, id) {
			data.Roles = append(data.Roles, ref{ID: ro.ID, Name: ro.Name, Note: ro.ApplicationID})
		}
	}
	return data, nil
}

func (d *Dashboard) permShow(w http.ResponseWriter, r *http.Request, c *Call) error {
	data, err := d.permData(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.Render(w, c, http.StatusOK, "permission", "Permission "+data.Permission.Name, data, nil)
	return nil
}

// permWrite is entityWrite for a permission's forms.
func (d *Dashboard) permWrite(w http.ResponseWriter, r *http.Request, c *Call, form string, build func(id string) (radmin.Change, string, error)) error {
	return d.entityWrite(w, r, c, entityPage{entity: "permission", idField: "id", param: "id",
		refuse: func(id string, err error) error {
			data, derr := d.permData(r, id)
			if derr != nil {
				return derr
			}
			d.Render(w, c, errorStatus(err), "permission", "Permission "+data.Permission.Name, data, FormError(form, r, err, entityFields))
			return nil
		},
		target: func(id string, ch radmin.Change) string {
			if ch.Action == "permission.delete" {
				return Prefix + "roles?app=" + urlQueryEscape(r.PostForm.Get("app"))
			}
			return Prefix + "permissions/" + pathEscape(id)
		}}, build)
}

func (d *Dashboard) permRename(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.permWrite(w, r, c, "rename", func(id string) (radmin.Change, string, error) {
		name, desc, appID, appType, err := appForm(r, "permission")
		if err != nil {
			return radmin.Change{}, "", err
		}
		return entityChange("permission.update", "permission", id, &authz.UpdatePermission{ID: id, Name: name, Description: desc,
			ApplicationID: appID, ApplicationType: appType}), "Permission saved.", nil
	})
}

func (d *Dashboard) permDelete(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.permWrite(w, r, c, "delete", func(id string) (radmin.Change, string, error) {
		return entityChange("permission.delete", "permission", id, &authz.DeletePermission{ID: id, Cascade: r.PostForm.Get("cascade") == "on"}),
			"Permission deleted.", nil
	})
}
