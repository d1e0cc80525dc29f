package admin

import (
	"net/http"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// Query parameters shared by lists.
var (
	pageParams = []adminParam{
		{"page", "integer", "0-based page number (default 0)"},
		{"per_page", "integer", "items per page, 1–1000 (default 100)"},
		{"q", "string", "case-insensitive substring of the name (or of the field named by field)"},
		{"field", "string", "what q searches: name (default) or description"},
		{"name", "string", "case-insensitive exact name"},
	}
	appParams = []adminParam{
		{"applicationId", "string", "only entities of this application (client_id or API audience)"},
		{"applicationType", "string", "only entities of this type: client or resource_server"},
	}
	cascadeParam = []adminParam{{"cascade", "boolean", "also remove the references to the entity instead of refusing with 409"}}
	importParams = []adminParam{
		{"replace", "boolean", "confirm an import that removes groups, roles, permissions or applications the store holds (refused with 409 without it)"},
		{"dry_run", "boolean", "change nothing: answer what the import would add, remove and change (ImportPreview)"},
	}
)

func withParams(lists ...[]adminParam) []adminParam {
	var out []adminParam
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// adminRoutes is the admin API: the router and the OpenAPI document are
// built from this one table. Response schemas written "key[Item]" are the
// list envelope {"key": [Item], "total", "page", "per_page"}.
func adminRoutes(c *adminCore) []adminRoute {
	g := adminGroups{c}
	ro := adminRoles{c}
	pe := adminPermissions{c}
	ap := adminApps{c}
	us := adminUsers{c}
	io := adminIO{c}
	au := adminAuditAPI{c}
	cl := adminClients{c}
	const (
		R  = radmin.ScopeRead
		W  = radmin.ScopeWrite
		ok = http.StatusOK
		cr = http.StatusCreated
		nc = http.StatusNoContent
	)
	return []adminRoute{
		{"GET", "/api/groups", R, "List groups.", "groups", pageParams, "", ok, "groups[Group]", g.list},
		{"POST", "/api/groups", W, "Create a group.", "groups", nil, "GroupBody", cr, "Group", g.create},
		{"GET", "/api/groups/{id}", R, "Get a group.", "groups", nil, "", ok, "Group", g.get},
		{"PUT", "/api/groups/{id}", W, "Update a group's name and description.", "groups", nil, "GroupBody", ok, "Group", g.update},
		{"DELETE", "/api/groups/{id}", W, "Delete a group (409 when nested in another group, unless cascade).", "groups", cascadeParam, "", nc, "", g.delete},
		{"GET", "/api/groups/{id}/members", R, "List the group's direct members.", "groups", pageParams, "", ok, "users[UserRef]", g.members},
		{"PATCH", "/api/groups/{id}/members", W, "Add members (user ids) to the group.", "groups", nil, "IDList", nc, "", g.addMembers},
		{"DELETE", "/api/groups/{id}/members", W, "Remove members (user ids) from the group.", "groups", nil, "IDList", nc, "", g.removeMembers},
		{"GET", "/api/groups/{id}/members/nested", R, "List effective members: of the group and of every group nested below it.", "groups", pageParams, "", ok, "users[NestedMember]", g.nestedMembers},
		{"GET", "/api/groups/{id}/nested", R, "List the group's nested (child) groups.", "groups", pageParams, "", ok, "groups[Group]", g.nested},
		{"PATCH", "/api/groups/{id}/nested", W, "Nest groups (ids) in the group; a group cannot nest itself, longer cycles are allowed.", "groups", nil, "IDList", nc, "", g.addNested},
		{"DELETE", "/api/groups/{id}/nested", W, "Un-nest groups (ids) from the group.", "groups", nil, "IDList", nc, "", g.removeNested},
		{"GET", "/api/groups/{id}/roles", R, "List the group's roles.", "groups", pageParams, "", ok, "roles[Role]", g.roles},
		{"PATCH", "/api/groups/{id}/roles", W, "Give the group roles (ids).", "groups", nil, "IDList", nc, "", g.addRoles},
		{"DELETE", "/api/groups/{id}/roles", W, "Take roles (ids) from the group.", "groups", nil, "IDList", nc, "", g.removeRoles},
		{"GET", "/api/groups/{id}/roles/nested", R, "List the roles members get through this group: its own and those of every group it is nested in.", "groups", pageParams, "", ok, "roles[Role]", g.nestedRoles},
		{"GET", "/api/groups/{id}/mappings", R, "List the group's IdP group mappings.", "groups", pageParams, "", ok, "mappings[Mapping]", g.mappings},
		{"PATCH", "/api/groups/{id}/mappings", W, "Add mappings ({groupName, connectionName}); each gets a new _id.", "groups", nil, "MappingBodies", nc, "", g.addMappings},
		{"DELETE", "/api/groups/{id}/mappings", W, "Remove mappings (mapping _ids).", "groups", nil, "IDList", nc, "", g.removeMappings},

		{"GET", "/api/roles", R, "List roles.", "roles", withParams(pageParams, appParams), "", ok, "roles[Role]", ro.list},
		{"POST", "/api/roles", W, "Create a role of an application (client) or API (resource_server).", "roles", nil, "RoleBody", cr, "Role", ro.create},
		{"GET", "/api/roles/{id}", R, "Get a role.", "roles", nil, "", ok, "Role", ro.get},
		{"PUT", "/api/roles/{id}", W, "Update a role; permissions, when given, replaces its permission list.", "roles", nil, "RoleBody", ok, "Role", ro.update},
		{"DELETE", "/api/roles/{id}", W, "Delete a role (409 when a group uses it, unless cascade).", "roles", cascadeParam, "", nc, "", ro.delete},
		{"GET", "/api/roles/{id}/users", R, "List the users the role is assigned to directly.", "roles", pageParams, "", ok, "users[UserRef]", ro.users},
		{"PATCH", "/api/roles/{id}/users", W, "Assign the role directly to users (ids).", "roles", nil, "IDList", nc, "", ro.addUsers},
		{"DELETE", "/api/roles/{id}/users", W, "Remove direct assignments (user ids).", "roles", nil, "IDList", nc, "", ro.removeUsers},
		{"GET", "/api/roles/{id}/permissions", R, "List the role's permissions.", "roles", pageParams, "", ok, "permissions[Permission]", ro.permissions},
		{"PATCH", "/api/roles/{id}/permissions", W, "Grant the role permissions (ids).", "roles", nil, "IDList", nc, "", ro.addPermissions},
		{"DELETE", "/api/roles/{id}/permissions", W, "Revoke permissions (ids) from the role.", "roles", nil, "IDList", nc, "", ro.removePermissions},

		{"GET", "/api/permissions", R, "List permissions.", "permissions", withParams(pageParams, appParams), "", ok, "permissions[Permission]", pe.list},
		{"POST", "/api/permissions", W, "Create a permission of an application or API.", "permissions", nil, "PermissionBody", cr, "Permission", pe.create},
		{"GET", "/api/permissions/{id}", R, "Get a permission.", "permissions", nil, "", ok, "Permission", pe.get},
		{"PUT", "/api/permissions/{id}", W, "Update a permission.", "permissions", nil, "PermissionBody", ok, "Permission", pe.update},
		{"DELETE", "/api/permissions/{id}", W, "Delete a permission (409 when a role uses it, unless cascade).", "permissions", cascadeParam, "", nc, "", pe.delete},

		{"GET", "/api/applications", R, "List registered applications (name or client_id filters).", "applications", pageParams, "", ok, "applications[Application]", ap.list},
		{"POST", "/api/applications", W, "Register an application (409 when the client_id exists).", "applications", nil, "ApplicationBody", cr, "Application", ap.create},
		{"GET", "/api/applications/{client_id}", R, "Get an application.", "applications", nil, "", ok, "Application", ap.get},
		{"PUT", "/api/applications/{client_id}", W, "Create or replace an application (201 when new).", "applications", nil, "ApplicationBody", ok, "Application", ap.put},
		{"DELETE", "/api/applications/{client_id}", W, "Remove an application.", "applications", nil, "", nc, "", ap.delete},

		{"GET", "/api/clients", R, "List the OAuth clients registered in the store (never a secret or its hash).", "clients", pageParams, "", ok, "clients[Client]", cl.list},
		{"POST", "/api/clients", W, "Register an OAuth client of the token endpoint on its application; the answer shows the secret, once (409 for an existing or configured client).", "clients", nil, "ClientBody", cr, "ClientCredentials", cl.create},
		{"GET", "/api/clients/{client_id}", R, "Get a registered client.", "clients", nil, "", ok, "Client", cl.get},
		{"DELETE", "/api/clients/{client_id}", W, "Remove a client's registration (its application stays unless it held nothing else).", "clients", nil, "", nc, "", cl.delete},
		{"POST", "/api/clients/{client_id}/secret", W, "Rotate the client's secret; the answer shows the new one, once; the old one stops working.", "clients", nil, "", ok, "ClientCredentials", cl.rotate},

		{"GET", "/api/users/{id}/groups", R, "List the groups the user is a direct member of.", "users", pageParams, "", ok, "groups[GroupRef]", us.groups},
		{"PATCH", "/api/users/{id}/groups", W, "Add the user to groups (ids or exact names).", "users", nil, "IDList", nc, "", us.addGroups},
		{"DELETE", "/api/users/{id}/groups", W, "Remove the user from groups (ids or exact names), or from all with ?all=true and no body.", "users",
			[]adminParam{{"all", "boolean", "remove the user from every group (send no body)"}}, "IDList", nc, "", us.removeGroups},
		{"GET", "/api/users/{id}/groups/calculate", R, "List the user's effective groups: direct and every group they are nested in.", "users", pageParams, "", ok, "groups[GroupRef]", us.groupsCalculate},
		{"GET", "/api/users/{id}/roles", R, "List the roles assigned to the user directly.", "users", withParams(pageParams, appParams[:1]), "", ok, "roles[RoleView]", us.roles},
		{"PATCH", "/api/users/{id}/roles", W, "Assign roles (ids) to the user directly.", "users", nil, "IDList", nc, "", us.addRoles},
		{"DELETE", "/api/users/{id}/roles", W, "Remove direct role assignments (ids) from the user.", "users", nil, "IDList", nc, "", us.removeRoles},
		{"GET", "/api/users/{id}/roles/calculate", R, "List the user's effective roles: direct and through effective groups, all applications.", "users", withParams(pageParams, appParams[:1]), "", ok, "roles[RoleView]", us.rolesCalculate},
		{"GET", "/api/users/{id}/policy", R, "Resolve the groups, roles and permissions a login of the user at a client gets.", "users",
			[]adminParam{{"client_id", "string", "the client (required)"}, {"audience", "string", "the API audience"},
				{"connection", "string", "the IdP connection name (enables mappings)"}, {"groups", "string", "comma-separated IdP groups"}},
			"", ok, "Policy", us.policy},
		{"GET", "/api/users/{id}/explain", R, "Explain the policy a login of the user at a client gets: direct and effective groups, roles and permissions, each with why (membership, nesting, mapping, direct role), and the stored profile.", "users",
			[]adminParam{{"client_id", "string", "the client (required)"}, {"audience", "string", "the API audience"},
				{"connection", "string", "the IdP connection name (enables mappings)"}, {"groups", "string", "comma-separated IdP groups"}},
			"", ok, "Explanation", us.explain},

		{"POST", "/api/import", radmin.ScopeImport, "Replace the whole document with an extension export (validated, atomic; ids kept; removing anything needs replace=true).", "import/export", importParams, "Document", ok, "ImportResult", io.importDoc},
		{"GET", "/api/export", radmin.ScopeExport, "Export the document in the extension's format (claimsmith section with ?full=true).", "import/export",
			[]adminParam{{"full", "boolean", "add the claimsmith section (applications, profiles)"}}, "", ok, "Document", io.exportDoc},
		// The extension's own paths for the same two operations.
		{"POST", "/api/configuration/import", radmin.ScopeImport, "Replace the whole document (the extension's path for POST /api/import).", "import/export", importParams, "Document", ok, "ImportResult", io.importDoc},
		{"GET", "/api/configuration/export", radmin.ScopeExport, "Export the document (the extension's path for GET /api/export).", "import/export",
			[]adminParam{{"full", "boolean", "add the claimsmith section (applications, profiles)"}}, "", ok, "Document", io.exportDoc},
		{"GET", "/api/audit", R, "List audit records of writes, newest first.", "audit",
			withParams(pageParams[:2], []adminParam{{"action", "string", "only this action, e.g. group.create"},
				{"key", "string", "only writes by this key name"}, {"entity_id", "string", "only writes to this entity"}}),
			"", ok, "records[AuditRecord]", au.list},
		{"GET", "/api/openapi.json", "", "This document.", "meta", nil, "", ok, "", adminDocs{}.openapi},
	}
}
