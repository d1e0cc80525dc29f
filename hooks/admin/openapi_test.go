package admin

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateOpenAPI = flag.Bool("update-openapi", false, "rewrite hooks/admin/openapi.json from the admin route table")

// str, arr, obj build JSON Schema fragments.
func str() map[string]any { return map[string]any{"type": "string"} }
func arr(items map[string]any) map[string]any {
	return map[string]any{"type": "array", "items": items}
}
func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }
func obj(required []string, props map[string]any) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

// clientProps are a registered client's fields; the secret only in the
// answer of create and rotate.
func clientProps(secret bool) map[string]any {
	p := map[string]any{"client_id": str(), "name": str(), "token_endpoint_auth_method": str(), "grant_types": arr(str()),
		"audiences": arr(str()), "scopes": arr(str()), "issuers": arr(str()), "jwks": map[string]any{"type": "object"},
		"has_secret": map[string]any{"type": "boolean"}, "secret_set": map[string]any{"type": "string", "format": "date-time"}}
	if secret {
		p["client_secret"] = map[string]any{"type": "string", "description": "shown this once; store it now"}
	}
	return p
}

func openAPISchemas() map[string]any {
	appType := map[string]any{"type": "string", "enum": []string{"client", "resource_server"}}
	return map[string]any{
		"Error": obj([]string{"error"}, map[string]any{"error": str(), "error_description": str()}),
		"Group": obj([]string{"_id", "name"}, map[string]any{"_id": str(), "name": str(), "description": str(),
			"members": arr(str()), "roles": arr(str()), "nested": arr(str()), "mappings": arr(ref("Mapping"))}),
		"GroupBody": obj([]string{"name"}, map[string]any{"_id": map[string]any{"type": "string", "description": "optional on create; makes a retried create a 409"},
			"name":        map[string]any{"type": "string", "minLength": 1, "maxLength": 50, "description": "unique case-insensitively"},
			"description": map[string]any{"type": "string", "maxLength": 500}}),
		"GroupRef": obj([]string{"_id", "name"}, map[string]any{"_id": str(), "name": str(), "description": str()}),
		"Mapping":  obj([]string{"_id", "groupName", "connectionName"}, map[string]any{"_id": str(), "groupName": str(), "connectionName": str()}),
		"MappingBodies": arr(obj([]string{"groupName", "connectionName"}, map[string]any{
			"groupName":      map[string]any{"type": "string", "minLength": 1, "maxLength": 50},
			"connectionName": map[string]any{"type": "string", "minLength": 1, "maxLength": 50}})),
		"IDList": arr(map[string]any{"type": "string", "minLength": 1}),
		"Role": obj([]string{"_id", "name", "applicationId"}, map[string]any{"_id": str(), "name": str(), "description": str(),
			"applicationType": appType, "applicationId": str(), "permissions": arr(str()), "users": arr(str())}),
		"RoleBody": obj([]string{"name", "applicationType", "applicationId"}, map[string]any{"_id": str(),
			"name":        map[string]any{"type": "string", "minLength": 1, "maxLength": 50, "description": "unique per application"},
			"description": str(), "applicationType": appType, "applicationId": str(),
			"permissions": map[string]any{"type": "array", "items": str(), "description": "permission _ids; on PUT, replaces the list when present"}}),
		"RoleView": obj([]string{"_id", "name", "applicationId"}, map[string]any{"_id": str(), "name": str(), "description": str(),
			"applicationType": appType, "applicationId": str()}),
		"Permission": obj([]string{"_id", "name"}, map[string]any{"_id": str(), "name": str(), "description": str(),
			"applicationType": appType, "applicationId": str()}),
		"PermissionBody": obj([]string{"name", "applicationType", "applicationId"}, map[string]any{"_id": str(),
			"name": map[string]any{"type": "string", "minLength": 1, "maxLength": 100}, "description": str(),
			"applicationType": appType, "applicationId": str()}),
		"Application": obj([]string{"client_id"}, map[string]any{"client_id": str(), "name": str(),
			"metadata": map[string]any{"type": "object", "additionalProperties": str()},
			"oauth":    map[string]any{"type": "object", "description": "its OAuth client registration (managed by /api/clients), never with the secret's hash"}}),
		"ApplicationBody": obj(nil, map[string]any{"client_id": map[string]any{"type": "string", "description": "required on POST; on PUT must match the path"},
			"name": str(), "metadata": map[string]any{"type": "object", "additionalProperties": str(), "description": "string values, e.g. required_roles"}}),
		"Client":            obj([]string{"client_id", "token_endpoint_auth_method", "grant_types", "has_secret"}, clientProps(false)),
		"ClientCredentials": obj([]string{"client_id", "token_endpoint_auth_method", "grant_types", "has_secret"}, clientProps(true)),
		"ClientBody": obj([]string{"client_id"}, map[string]any{"client_id": str(),
			"name":                       map[string]any{"type": "string", "description": "the application's name when it is new"},
			"token_endpoint_auth_method": map[string]any{"type": "string", "enum": []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}, "description": "default client_secret_basic"},
			"grant_types":                map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": []string{"urn:ietf:params:oauth:grant-type:token-exchange", "client_credentials"}}, "description": "default token exchange only"},
			"audiences":                  map[string]any{"type": "array", "items": str(), "description": "allowed audiences; the first is the default"},
			"scopes":                     map[string]any{"type": "array", "items": str(), "description": "when set, the only scopes the client may request"},
			"issuers":                    map[string]any{"type": "array", "items": str(), "description": "when set, the only upstream issuers whose tokens it may exchange"},
			"jwks":                       map[string]any{"type": "object", "description": "public JWK set, required for private_key_jwt"}}),
		"UserRef":      obj([]string{"user_id"}, map[string]any{"user_id": str()}),
		"NestedMember": obj([]string{"user", "group"}, map[string]any{"user": ref("UserRef"), "group": ref("GroupRef")}),
		"Policy":       obj([]string{"groups", "roles", "permissions"}, map[string]any{"groups": arr(str()), "roles": arr(str()), "permissions": arr(str())}),
		"Ref":          obj([]string{"_id", "name"}, map[string]any{"_id": str(), "name": str()}),
		"GroupWhy": obj([]string{"via", "path"}, map[string]any{
			"via":  map[string]any{"type": "string", "enum": []string{"member", "mapping"}},
			"path": map[string]any{"type": "array", "items": ref("Ref"), "description": "from the group the user is in (by membership or mapping) up through nesting parents to this group"},
			"mapping": obj([]string{"connectionName", "groupName", "from"}, map[string]any{"_id": str(), "connectionName": str(), "groupName": str(),
				"from":       map[string]any{"type": "string", "enum": []string{"idp", "group"}, "description": "idp: the login reported the group; group: the name of a direct group"},
				"from_group": ref("Ref")})}),
		"Explanation": obj([]string{"user_id", "client_id", "revision", "direct_groups", "direct_roles", "groups", "roles", "permissions"}, map[string]any{
			"user_id": str(), "client_id": str(), "audience": str(), "connection": str(), "idp_groups": arr(str()),
			"revision":      map[string]any{"type": "integer"},
			"direct_groups": arr(ref("Ref")),
			"direct_roles": arr(obj([]string{"_id", "name", "applicationId", "applies"}, map[string]any{"_id": str(), "name": str(),
				"applicationType": appType, "applicationId": str(), "applies": map[string]any{"type": "boolean"}})),
			"groups": arr(obj([]string{"_id", "name", "why"}, map[string]any{"_id": str(), "name": str(), "why": arr(ref("GroupWhy"))})),
			"roles": arr(obj([]string{"_id", "name", "applicationId"}, map[string]any{"_id": str(), "name": str(), "applicationType": appType,
				"applicationId": str(), "groups": arr(ref("Ref")), "direct": map[string]any{"type": "boolean"}})),
			"permissions": arr(obj([]string{"_id", "name", "roles"}, map[string]any{"_id": str(), "name": str(), "applicationType": appType,
				"applicationId": str(), "roles": arr(ref("Ref"))})),
			"profile": obj(nil, map[string]any{"user_id": str(), "app_metadata": map[string]any{"type": "object"}, "user_metadata": map[string]any{"type": "object"}})}),
		"Document": obj(nil, map[string]any{"configuration": arr(map[string]any{"type": "object"}), "groups": arr(ref("Group")),
			"roles": arr(ref("Role")), "permissions": arr(ref("Permission")),
			"claimsmith": obj(nil, map[string]any{"applications": arr(ref("Application")), "profiles": arr(map[string]any{"type": "object"})})}),
		"ImportSummary": obj(nil, map[string]any{"revision": map[string]any{"type": "integer"}, "groups": map[string]any{"type": "integer"},
			"roles": map[string]any{"type": "integer"}, "permissions": map[string]any{"type": "integer"}, "applications": map[string]any{"type": "integer"}}),
		"EntityDiff": obj([]string{"added", "removed", "changed", "unchanged"}, map[string]any{"added": arr(str()), "removed": arr(str()),
			"changed": arr(str()), "unchanged": map[string]any{"type": "integer"}}),
		"ImportPreview": obj([]string{"dry_run", "requires_replace", "revision"}, map[string]any{"dry_run": map[string]any{"type": "boolean"},
			"requires_replace": map[string]any{"type": "boolean", "description": "the import removes entities: it needs replace=true"},
			"revision":         map[string]any{"type": "integer", "description": "the store revision the preview was computed at"},
			"groups":           ref("EntityDiff"), "roles": ref("EntityDiff"), "permissions": ref("EntityDiff"), "applications": ref("EntityDiff")}),
		"ImportResult": map[string]any{"oneOf": []any{ref("ImportSummary"), ref("ImportPreview")},
			"description": "ImportSummary after an import, ImportPreview with dry_run=true"},
		"AuditRecord": obj([]string{"seq", "time", "key_name", "action"}, map[string]any{
			"seq": map[string]any{"type": "integer"}, "time": map[string]any{"type": "string", "format": "date-time"},
			"key_id": str(), "key_name": str(), "action": str(), "entity": str(), "entity_id": str(),
			"revision_before": map[string]any{"type": "integer"}, "revision_after": map[string]any{"type": "integer"},
			"before": map[string]any{"description": "the entity before the write"}, "after": map[string]any{"description": "the entity after the write"},
			"request_id": str(), "recovered": map[string]any{"type": "boolean",
				"description": "appended at start-up from the write-ahead intent of a write whose process stopped before auditing it"}}),
	}
}

var listSchema = regexp.MustCompile(`^(\w+)\[(\w+)\]$`)

func responseSchema(s string) map[string]any {
	if m := listSchema.FindStringSubmatch(s); m != nil {
		return obj([]string{m[1], "total", "page", "per_page"}, map[string]any{
			m[1]: arr(ref(m[2])), "total": map[string]any{"type": "integer"},
			"page": map[string]any{"type": "integer"}, "per_page": map[string]any{"type": "integer"}})
	}
	return ref(s)
}

var pathParam = regexp.MustCompile(`\{(\w+)\}`)

// generateOpenAPI builds the OpenAPI 3 document from the route table.
func generateOpenAPI(routes []adminRoute) map[string]any {
	paths := map[string]any{}
	errResp := func(name string) map[string]any {
		return map[string]any{"$ref": "#/components/responses/" + name}
	}
	for _, rt := range routes {
		item, _ := paths[rt.pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.pattern] = item
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": str()})
		}
		for _, q := range rt.query {
			params = append(params, map[string]any{"name": q.name, "in": "query", "description": q.desc, "schema": map[string]any{"type": q.typ}})
		}
		op := map[string]any{
			"summary":     rt.summary,
			"operationId": operationID(rt.method, rt.pattern),
			"tags":        []string{rt.tag},
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		ok := map[string]any{"description": http.StatusText(rt.status)}
		if rt.resp != "" {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": responseSchema(rt.resp)}}
		}
		responses := map[string]any{itoa(rt.status): ok}
		if rt.method == "GET" && rt.scope != "" {
			responses["304"] = map[string]any{"description": "If-None-Match names the current revision"}
		}
		if rt.body != "" || rt.method != "GET" || len(rt.query) > 0 {
			responses["400"] = errResp("BadRequest")
		}
		if rt.scope != "" {
			op["security"] = []any{map[string]any{"adminKey": []string{rt.scope}}}
			op["x-required-scope"] = rt.scope
			responses["401"] = errResp("Unauthorized")
			responses["403"] = errResp("Forbidden")
		}
		if strings.Contains(rt.pattern, "{") {
			responses["404"] = errResp("NotFound")
		}
		if rt.method != "GET" {
			responses["409"] = errResp("Conflict")
			params = append(params, map[string]any{"name": "If-Match", "in": "header", "description": "the ETag (store revision) the change was based on", "schema": str()})
			op["parameters"] = params
		}
		if rt.body != "" {
			responses["413"] = errResp("TooLarge")
			responses["415"] = errResp("UnsupportedMediaType")
			op["requestBody"] = map[string]any{"required": rt.method != "DELETE" || rt.pattern != "/api/users/{id}/groups",
				"content": map[string]any{"application/json": map[string]any{"schema": ref(rt.body)}}}
		}
		op["responses"] = responses
		item[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "claimsmith admin API",
			"version": "1",
			"description": "Groups, roles, permissions, applications and memberships, on the Auth0 Authorization Extension's paths where it had them. " +
				"Authenticate with an admin key (claimsmith admin-key create) as a bearer token. Every response carries the store revision as ETag; " +
				"send it back in If-Match to make a write fail with 409 if anything changed since. Lists take page (0-based) and per_page and answer " +
				"{<items>, total, page, per_page}. Every write is recorded in the audit log.",
		},
		"servers": []any{map[string]any{"url": "/"}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"adminKey": map[string]any{"type": "http", "scheme": "bearer",
				"description": "an admin key; scopes read:authz, write:authz, import, export"}},
			"schemas":   openAPISchemas(),
			"responses": errorResponses(),
		},
		"paths": paths,
	}
}

func errorResponses() map[string]any {
	out := map[string]any{}
	for name, d := range map[string]string{
		"BadRequest":           "invalid input (e.g. an id that is empty, not UTF-8 or over 1024 bytes); error_description names the field",
		"Unauthorized":         "no or unknown admin key",
		"Forbidden":            "the key lacks the scope",
		"NotFound":             "no such entity",
		"Conflict":             "a conflict: name taken, entity in use, If-Match names another revision, or an import would remove entities without replace=true",
		"TooLarge":             "body too large",
		"UnsupportedMediaType": "body is not application/json, or names a charset other than UTF-8",
	} {
		out[name] = map[string]any{"description": d, "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
	}
	return out
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func operationID(method, pattern string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(strings.TrimPrefix(pattern, "/api/"), "/") {
		seg = strings.Trim(seg, "{}")
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, ".", "_"), "_", " ")
		for _, w := range strings.Fields(seg) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// TestOpenAPIInSync keeps hooks/admin/openapi.json equal to what the route table
// produces (run with -update-openapi to rewrite it) and walks the router:
// every documented operation reaches a handler, every route is documented
// with its scope.
func TestOpenAPIInSync(t *testing.T) {
	f := newAdminFixture(t)
	want, err := json.MarshalIndent(generateOpenAPI(f.api.routes), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *updateOpenAPI {
		if err := os.WriteFile("openapi.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(openAPIDoc, want) && !*updateOpenAPI {
		t.Fatalf("hooks/admin/openapi.json is stale: run go test ./hooks/admin -run TestOpenAPIInSync -update-openapi")
	}

	// The served document is the embedded one.
	res := f.do(t, "GET", "/api/openapi.json", "", nil)
	if res.status != 200 {
		t.Fatalf("openapi.json: %d", res.status)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(res.body, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not an OpenAPI 3 document: %v", err)
	}

	// Every $ref points at a component that exists.
	var whole map[string]any
	_ = json.Unmarshal(res.body, &whole)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(r, "#/"), "/")
				var cur any = whole
				for _, p := range parts {
					m, _ := cur.(map[string]any)
					cur = m[p]
				}
				if cur == nil {
					t.Errorf("dangling $ref %s", r)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(whole)

	// Every route is documented with its scope...
	for _, rt := range f.api.Routes() {
		op := doc.Paths[rt.Pattern][strings.ToLower(rt.Method)]
		if op == nil {
			t.Errorf("%s %s is served but not documented", rt.Method, rt.Pattern)
			continue
		}
		if got, _ := op["x-required-scope"].(string); got != rt.Scope {
			t.Errorf("%s %s: documented scope %q, route needs %q", rt.Method, rt.Pattern, got, rt.Scope)
		}
	}
	// ...and every documented operation reaches its handler through the
	// real router (not the JSON 404 for unknown paths, not a 405), with the
	// documented authentication.
	ops := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			ops++
			url := pathParam.ReplaceAllString(path, "x")
			r := f.do(t, strings.ToUpper(method), url, "", nil) // no key
			scope, _ := op["x-required-scope"].(string)
			switch {
			case r.status == http.StatusMethodNotAllowed:
				t.Errorf("%s %s: documented but the router answers 405", method, path)
			case scope != "" && r.status != http.StatusUnauthorized:
				t.Errorf("%s %s: without a key want 401, got %d %s", method, path, r.status, r.body)
			case scope == "" && r.status != http.StatusOK:
				t.Errorf("%s %s: want 200, got %d", method, path, r.status)
			}
			r = f.do(t, strings.ToUpper(method), url, f.all, nil)
			if r.status == http.StatusNotFound && strings.Contains(string(r.body), "no admin endpoint") {
				t.Errorf("%s %s: documented but not routed", method, path)
			}
			// A key without the operation's scope: 403, whatever the body.
			if scope != "" {
				lacking := f.read
				if scope == "read:authz" {
					lacking = f.write
				}
				if r := f.do(t, strings.ToUpper(method), url, lacking, "{}"); r.status != http.StatusForbidden {
					t.Errorf("%s %s: key without %s: want 403, got %d", method, path, scope, r.status)
				}
			}
			// An unknown entity: 404 for every read below it and for its
			// delete (the requests that take no body).
			entity := strings.HasPrefix(path, "/api/groups/") || strings.HasPrefix(path, "/api/roles/") ||
				strings.HasPrefix(path, "/api/permissions/") || strings.HasPrefix(path, "/api/applications/")
			single := strings.Count(path, "/") == 3 // /api/<resource>/{id}
			if entity && (method == "get" || method == "delete" && single) {
				if r.status != http.StatusNotFound {
					t.Errorf("%s %s with an unknown id: want 404, got %d %s", method, path, r.status, r.body)
				}
			}
		}
	}
	if ops != len(f.api.Routes()) {
		t.Errorf("%d documented operations, %d routes", ops, len(f.api.Routes()))
	}
	if !slices.ContainsFunc(f.api.Routes(), func(r RouteInfo) bool { return r.Pattern == "/api/import" }) {
		t.Error("import route missing")
	}
}
