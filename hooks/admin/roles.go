package admin

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// adminRoles serves /api/roles: CRUD per application (a client_id, or an API
// audience with applicationType resource_server), directly assigned users
// and the role's permissions.
type adminRoles struct{ *adminCore }

// roleBody is the body of POST /api/roles and PUT /api/roles/{id}, the
// extension's role schema. permissions, when present, replaces the list.
type roleBody struct {
	ID              *string  `json:"_id"`
	Name            string   `json:"name"`
	Description     string   `json:"description"`
	ApplicationType string   `json:"applicationType"`
	ApplicationID   string   `json:"applicationId"`
	Permissions     []string `json:"permissions"`
}

func findRole(doc *authz.Document, id string) (*authz.Role, error) {
	for i := range doc.Roles {
		if doc.Roles[i].ID == id {
			return &doc.Roles[i], nil
		}
	}
	return nil, fmt.Errorf("role %q: %w", id, runtime.ErrNotFound)
}

func roleState(id string) audited {
	return audited{fp: authz.Footprint{Roles: []string{id}}, render: func(doc *authz.Document) any {
		if r, err := findRole(doc, id); err == nil {
			return r
		}
		return nil
	}}
}

// appFilter reads the applicationId / applicationType filters of role and
// permission lists.
func appFilter(r *http.Request) (appID, appType string) {
	q := r.URL.Query()
	return q.Get("applicationId"), q.Get("applicationType")
}

func (h adminRoles) list(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	appID, appType := appFilter(r)
	page, err := h.svc.Roles(r.Context(), lq, appID, appType)
	return writePage(w, r, "roles", page, err)
}

func (h adminRoles) get(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	role, err := findRole(m.Document(), r.PathValue("id"))
	if err != nil {
		return err
	}
	hooks.WriteJSON(w, http.StatusOK, role)
	return nil
}

func (h adminRoles) create(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	var b roleBody
	if err := h.decodeBody(w, r, "role", &b); err != nil {
		return err
	}
	id, err := bodyID("role", b.ID)
	if err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "role.create", entity: "role", id: id, state: roleState(id),
		ops: []authz.Op{&authz.CreateRole{ID: id, Name: b.Name, Description: b.Description,
			ApplicationType: b.ApplicationType, ApplicationID: b.ApplicationID, Permissions: b.Permissions}}})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/roles/"+id)
	return writeEntity(w, http.StatusCreated, res, roleState(id).of(res.after))
}

// bodyID returns the optional _id of a create body, or a new one.
func bodyID(entity string, id *string) (string, error) {
	if id == nil {
		return authz.NewID(), nil
	}
	if *id == "" {
		return "", &runtime.ValidationError{Entity: entity, Field: "_id", Reason: "is empty: omit it to have one generated"}
	}
	return *id, nil
}

func samePathID(entity, path string, body *string) error {
	if body != nil && *body != path {
		return &runtime.ValidationError{Entity: entity, ID: path, Field: "_id", Reason: fmt.Sprintf("is %q, differs from the path", *body)}
	}
	return nil
}

func (h adminRoles) update(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("id")
	var b roleBody
	if err := h.decodeBody(w, r, "role", &b); err != nil {
		return err
	}
	if err := samePathID("role", id, b.ID); err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "role.update", entity: "role", id: id, state: roleState(id),
		ops: []authz.Op{&authz.UpdateRole{ID: id, Name: b.Name, Description: b.Description,
			ApplicationType: b.ApplicationType, ApplicationID: b.ApplicationID, Permissions: b.Permissions}}})
	if err != nil {
		return err
	}
	return writeEntity(w, http.StatusOK, res, roleState(id).of(res.after))
}

func (h adminRoles) delete(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("id")
	cascade, err := boolQuery(r, "cascade")
	if err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "role.delete", entity: "role", id: id, state: roleState(id),
		ops: []authz.Op{&authz.DeleteRole{ID: id, Cascade: cascade}}})
	if err != nil {
		return err
	}
	return noContent(w, res)
}

func (h adminRoles) users(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	role, err := findRole(m.Document(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []userRef{}
	for _, u := range role.Users {
		if lq.Match(u, "") {
			out = append(out, userRef{UserID: u})
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("users", out, lq))
	return nil
}

func (h adminRoles) permissions(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	doc := m.Document()
	role, err := findRole(doc, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := []authz.Permission{}
	for _, p := range doc.Permissions {
		if slices.Contains(role.Permissions, p.ID) && lq.Match(p.Name, p.Description) {
			out = append(out, p)
		}
	}
	hooks.WriteJSON(w, http.StatusOK, listPage("permissions", out, lq))
	return nil
}

func (h adminRoles) addUsers(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.roleIDsWrite(w, r, c, "users", "role.users.add", func(id string, ids []string) authz.Op {
		return &authz.AddRoleUsers{RoleID: id, UserIDs: ids}
	})
}

func (h adminRoles) removeUsers(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.roleIDsWrite(w, r, c, "users", "role.users.remove", func(id string, ids []string) authz.Op {
		return &authz.RemoveRoleUsers{RoleID: id, UserIDs: ids}
	})
}

func (h adminRoles) addPermissions(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.roleIDsWrite(w, r, c, "permissions", "role.permissions.add", func(id string, ids []string) authz.Op {
		return &authz.AddRolePermissions{RoleID: id, PermissionIDs: ids}
	})
}

func (h adminRoles) removePermissions(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	return h.roleIDsWrite(w, r, c, "permissions", "role.permissions.remove", func(id string, ids []string) authz.Op {
		return &authz.RemoveRolePermissions{RoleID: id, PermissionIDs: ids}
	})
}

func (h adminRoles) roleIDsWrite(w http.ResponseWriter, r *http.Request, c *adminCall, field, action string, op func(string, []string) authz.Op) error {
	return h.idsWrite(w, r, c, "role", field, action, roleState, op)
}

// adminPermissions serves /api/permissions.
type adminPermissions struct{ *adminCore }

// permissionBody is the extension's permission schema.
type permissionBody struct {
	ID              *string `json:"_id"`
	Name            string  `json:"name"`
	Description     string  `json:"description"`
	ApplicationType string  `json:"applicationType"`
	ApplicationID   string  `json:"applicationId"`
}

func findPermission(doc *authz.Document, id string) (*authz.Permission, error) {
	for i := range doc.Permissions {
		if doc.Permissions[i].ID == id {
			return &doc.Permissions[i], nil
		}
	}
	return nil, fmt.Errorf("permission %q: %w", id, runtime.ErrNotFound)
}

func permissionState(id string) audited {
	return audited{fp: authz.Footprint{Permissions: []string{id}}, render: func(doc *authz.Document) any {
		if p, err := findPermission(doc, id); err == nil {
			return p
		}
		return nil
	}}
}

func (h adminPermissions) list(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	appID, appType := appFilter(r)
	page, err := h.svc.Permissions(r.Context(), lq, appID, appType)
	return writePage(w, r, "permissions", page, err)
}

func (h adminPermissions) get(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	p, err := findPermission(m.Document(), r.PathValue("id"))
	if err != nil {
		return err
	}
	hooks.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (h adminPermissions) create(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	var b permissionBody
	if err := h.decodeBody(w, r, "permission", &b); err != nil {
		return err
	}
	id, err := bodyID("permission", b.ID)
	if err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "permission.create", entity: "permission", id: id, state: permissionState(id),
		ops: []authz.Op{&authz.CreatePermission{ID: id, Name: b.Name, Description: b.Description,
			ApplicationType: b.ApplicationType, ApplicationID: b.ApplicationID}}})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/permissions/"+id)
	return writeEntity(w, http.StatusCreated, res, permissionState(id).of(res.after))
}

func (h adminPermissions) update(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("id")
	var b permissionBody
	if err := h.decodeBody(w, r, "permission", &b); err != nil {
		return err
	}
	if err := samePathID("permission", id, b.ID); err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "permission.update", entity: "permission", id: id, state: permissionState(id),
		ops: []authz.Op{&authz.UpdatePermission{ID: id, Name: b.Name, Description: b.Description,
			ApplicationType: b.ApplicationType, ApplicationID: b.ApplicationID}}})
	if err != nil {
		return err
	}
	return writeEntity(w, http.StatusOK, res, permissionState(id).of(res.after))
}

func (h adminPermissions) delete(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("id")
	cascade, err := boolQuery(r, "cascade")
	if err != nil {
		return err
	}
	res, err := h.write(r, c, adminChange{action: "permission.delete", entity: "permission", id: id, state: permissionState(id),
		ops: []authz.Op{&authz.DeletePermission{ID: id, Cascade: cascade}}})
	if err != nil {
		return err
	}
	return noContent(w, res)
}
