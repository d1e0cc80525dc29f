package authztest

import (
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Client and audience ids used by the resolution fixture.
const (
	Portal  = "portal-client"
	Reports = "reports-client"
	API     = "https://api.example.com/"
)

func mapping(id, group, conn string) authz.Mapping {
	return authz.Mapping{ID: id, GroupName: group, ConnectionName: conn}
}

// ResolutionFixture is a document exercising every step of the extension's
// resolution algorithm (REFERENCE.md §1). Its array order is chosen so that
// storage order differs from walk order and from alphabetical order.
func ResolutionFixture() *authz.Document {
	return &authz.Document{
		Configuration: []authz.Configuration{{ID: "v1", APIKey: "fixture-key"}},
		Groups: []authz.Group{
			{ID: "g-eng", Name: "Engineering", Members: []string{"auth0|alice"}, Nested: []string{"g-backend"}, Roles: []string{"r-viewer"}},
			{ID: "g-backend", Name: "Backend", Nested: []string{"g-db"}, Roles: []string{"r-editor"}},
			{ID: "g-db", Name: "Databases", Members: []string{"auth0|dave"}, Roles: []string{"r-reports-admin"}},
			{ID: "g-con1", Name: "Contractors", Members: []string{"auth0|carol"}, Roles: []string{"r-viewer2"}},
			{ID: "g-con2", Name: "Contractors", Members: []string{"auth0|carol"}, Roles: []string{"r-viewer"}},
			{ID: "g-cyc-a", Name: "Cycle A", Members: []string{"auth0|erin"}, Nested: []string{"g-cyc-b"}, Roles: []string{"r-editor"}},
			{ID: "g-cyc-b", Name: "Cycle B", Nested: []string{"g-cyc-a", "g-cyc-b"}},
			{ID: "g-ad", Name: "AD Admins", Mappings: []authz.Mapping{mapping("m-ad", "Domain Admins", "corp-ad")}, Roles: []string{"r-admin"}},
			{ID: "g-engmap", Name: "Eng Mapped", Mappings: []authz.Mapping{mapping("m-eng", "Engineering", "corp-ad")}},
			{ID: "g-google", Name: "Google Admins", Mappings: []authz.Mapping{mapping("m-goog", "Domain Admins", "google-oauth2")}},
			{ID: "g-adparent", Name: "Admins Parent", Nested: []string{"g-ad"}, Roles: []string{"r-Admin"}},
			{ID: "g-dangling", Name: "Dangling", Members: []string{"auth0|frank"}, Roles: []string{"r-missing"}, Nested: []string{"g-missing"}},
			{ID: "g-chain", Name: "Chained", Mappings: []authz.Mapping{mapping("m-chain", "Eng Mapped", "corp-ad")}},
			{ID: "g-api", Name: "API Users", Members: []string{"auth0|ivan"}, Roles: []string{"r-api-reader"}},
		},
		Roles: []authz.Role{
			{ID: "r-support", Name: "support", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: []string{"p-support"}, Users: []string{"auth0|alice", "auth0|frank"}},
			{ID: "r-viewer", Name: "viewer", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: []string{"p-read"}, Users: []string{"auth0|alice"}},
			{ID: "r-editor", Name: "editor", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: []string{"p-write", "p-read"}},
			{ID: "r-reports-admin", Name: "admin", ApplicationType: authz.TypeClient, ApplicationID: Reports, Permissions: []string{"p-reports"}},
			{ID: "r-viewer2", Name: "viewer", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: []string{"p-export"}},
			{ID: "r-admin", Name: "admin", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: []string{"p-admin", "p-missing", "p-reports"}},
			{ID: "r-api-reader", Name: "api-reader", ApplicationType: authz.TypeResourceServer, ApplicationID: API, Permissions: []string{"p-api-read"}},
			{ID: "r-Admin", Name: "Admin", ApplicationType: authz.TypeClient, ApplicationID: Portal, Permissions: []string{"p-upper"}},
			{ID: "r-weird", Name: "weird", ApplicationType: authz.TypeClient, ApplicationID: API, Permissions: []string{"p-read"}, Users: []string{"auth0|ivan"}},
		},
		Permissions: []authz.Permission{
			{ID: "p-read", Name: "read:docs", ApplicationType: authz.TypeClient, ApplicationID: Portal},
			{ID: "p-write", Name: "write:docs", ApplicationType: authz.TypeClient, ApplicationID: Portal},
			{ID: "p-reports", Name: "reports:all", ApplicationType: authz.TypeClient, ApplicationID: Reports},
			{ID: "p-export", Name: "export:docs", ApplicationType: authz.TypeClient, ApplicationID: Portal},
			{ID: "p-admin", Name: "admin:portal", ApplicationType: authz.TypeClient, ApplicationID: Portal},
			{ID: "p-api-read", Name: "read:api", ApplicationType: authz.TypeResourceServer, ApplicationID: API},
			{ID: "p-support", Name: "support:tickets", ApplicationType: authz.TypeClient, ApplicationID: Portal},
			{ID: "p-upper", Name: "manage:portal", ApplicationType: authz.TypeClient, ApplicationID: Portal},
		},
	}
}

// ResolutionCase is one policy question on ResolutionFixture and the exact
// answer the extension gives.
type ResolutionCase struct {
	Name  string
	Query authz.PolicyQuery
	Want  authz.Policy
}

func pol(groups, roles, perms []string) authz.Policy {
	return authz.Policy{Groups: groups, Roles: roles, Permissions: perms}
}

func s(v ...string) []string { return v }

// ResolutionCases covers every step of REFERENCE.md §1 on ResolutionFixture.
func ResolutionCases() []ResolutionCase {
	q := func(user, client, conn string, idp ...string) authz.PolicyQuery {
		return authz.PolicyQuery{UserID: user, ClientID: client, Connection: conn, IdPGroups: idp}
	}
	withAud := func(pq authz.PolicyQuery, aud string) authz.PolicyQuery { pq.Audience = aud; return pq }
	return []ResolutionCase{
		{"direct membership; group roles before direct roles; role both via group and direct once",
			q("auth0|alice", Portal, ""),
			pol(s("Engineering"), s("viewer", "support"), s("read:docs", "support:tickets"))},
		{"nested 3 levels: member of grandchild gets grandparent's roles; storage order; other client's role filtered",
			q("auth0|dave", Portal, ""),
			pol(s("Engineering", "Backend", "Databases"), s("viewer", "editor"), s("read:docs", "write:docs"))},
		{"roles filtered to the other client",
			q("auth0|dave", Reports, ""),
			pol(s("Engineering", "Backend", "Databases"), s("admin"), s("reports:all"))},
		{"nesting cycle and self-nesting terminate",
			q("auth0|erin", Portal, ""),
			pol(s("Cycle A", "Cycle B"), s("editor"), s("read:docs", "write:docs"))},
		{"mapping matched by IdP group, parents of mapped groups added, Admin and admin distinct, other app's permission kept, dangling permission ignored",
			q("mallory", Portal, "corp-ad", "Domain Admins"),
			pol(s("AD Admins", "Admins Parent"), s("admin", "Admin"), s("reports:all", "admin:portal", "manage:portal"))},
		{"mapping of another connection ignored",
			q("mallory", Portal, "google-oauth2", "Domain Admins"),
			pol(s("Google Admins"), s(), s())},
		{"no connection: no mapped groups",
			q("mallory", Portal, "", "Domain Admins"),
			pol(s(), s(), s())},
		{"mapping matched by a direct group's name; mappings never chain",
			q("auth0|alice", Portal, "corp-ad"),
			pol(s("Engineering", "Eng Mapped"), s("viewer", "support"), s("read:docs", "support:tickets"))},
		{"inherited group names do not match mappings",
			q("auth0|dave", Portal, "corp-ad"),
			pol(s("Engineering", "Backend", "Databases"), s("viewer", "editor"), s("read:docs", "write:docs"))},
		{"direct and mapped together, exact order",
			q("auth0|alice", Portal, "corp-ad", "Domain Admins"),
			pol(s("Engineering", "AD Admins", "Eng Mapped", "Admins Parent"), s("viewer", "admin", "Admin", "support"),
				s("read:docs", "reports:all", "admin:portal", "support:tickets", "manage:portal"))},
		{"same-named groups once; same-named roles once, both contribute permissions",
			q("auth0|carol", Portal, ""),
			pol(s("Contractors"), s("viewer"), s("read:docs", "export:docs"))},
		{"unknown role and nested ids ignored; direct user role",
			q("auth0|frank", Portal, ""),
			pol(s("Dangling"), s("support"), s("support:tickets"))},
		{"resource_server role bound to the audience applies; client-type role of that id does not",
			withAud(q("auth0|ivan", Portal, ""), API),
			pol(s("API Users"), s("api-reader"), s("read:api"))},
		{"no audience: exactly the extension's answer",
			q("auth0|ivan", Portal, ""),
			pol(s("API Users"), s(), s())},
		{"other audience: resource_server role not applied",
			withAud(q("auth0|ivan", Portal, ""), "https://other.example.com/"),
			pol(s("API Users"), s(), s())},
		{"clientId match ignores applicationType",
			q("auth0|ivan", API, ""),
			pol(s("API Users"), s("api-reader", "weird"), s("read:docs", "read:api"))},
		{"user ids are case-sensitive",
			q("AUTH0|ALICE", Portal, ""),
			pol(s(), s(), s())},
		{"unknown user",
			q("nobody", Portal, "corp-ad", "Nothing"),
			pol(s(), s(), s())},
	}
}
