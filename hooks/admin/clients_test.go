package admin

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestClientsAPI: /api/clients over HTTP — scopes, the secret shown once
// (201/200 with no-store, never on get or list), ETag and If-Match, every
// refusal a 4xx naming what was wrong that changes nothing, the audit
// actions, and an application PUT keeping the registration.
func TestClientsAPI(t *testing.T) {
	f := newAdminFixture(t)
	if r := f.do(t, "POST", "/api/clients", f.read, `{"client_id":"svc"}`); r.status != 403 {
		t.Fatalf("read key creates: %d", r.status)
	}
	r := f.must(t, 201, "POST", "/api/clients", `{"client_id":"svc","name":"Service","grant_types":["client_credentials"],"audiences":["https://api.example.com"]}`)
	var cred struct {
		ClientID  string `json:"client_id"`
		Secret    string `json:"client_secret"`
		HasSecret bool   `json:"has_secret"`
	}
	r.json(t, &cred)
	if cred.Secret == "" || !cred.HasSecret || r.header.Get("ETag") == "" || r.header.Get("Cache-Control") != "no-store" ||
		r.header.Get("Location") != "/api/clients/svc" {
		t.Fatalf("create: %s %v", r.body, r.header)
	}
	if f.lastAudit(t).Action != "client.create" {
		t.Fatalf("audit action %q", f.lastAudit(t).Action)
	}
	for _, p := range []string{"/api/clients", "/api/clients/svc", "/api/applications/svc"} {
		g := f.must(t, 200, "GET", p, nil)
		if strings.Contains(string(g.body), cred.Secret) || strings.Contains(string(g.body), "secret_hash") {
			t.Fatalf("GET %s shows the secret or its hash: %s", p, g.body)
		}
	}
	etag := r.header.Get("ETag")
	f.fails(t, 409, "", "POST", "/api/clients", `{"client_id":"svc"}`)
	f.fails(t, 400, "grant_types", "POST", "/api/clients", `{"client_id":"x","grant_types":["password"]}`)
	f.fails(t, 400, "token_endpoint_auth_method", "POST", "/api/clients", `{"client_id":"x","token_endpoint_auth_method":"none"}`)
	f.fails(t, 400, "jwks", "POST", "/api/clients", `{"client_id":"x","token_endpoint_auth_method":"private_key_jwt"}`)
	f.fails(t, 400, "client_id", "POST", "/api/clients", `{"grant_types":["client_credentials"]}`)
	f.fails(t, 400, "secret", "POST", "/api/clients", `{"client_id":"x","client_secret":"chosen"}`)
	f.fails(t, 404, "ghost", "POST", "/api/clients/ghost/secret", nil)
	f.fails(t, 404, "ghost", "DELETE", "/api/clients/ghost", nil)
	f.fails(t, 404, "ghost", "GET", "/api/clients/ghost", nil)

	// Replacing the application's name and metadata keeps the client.
	f.must(t, 200, "PUT", "/api/applications/svc", `{"name":"Service 2","metadata":{"required_roles":"x"}}`)
	f.must(t, 200, "GET", "/api/clients/svc", nil)
	f.fails(t, 409, "", "POST", "/api/clients/svc/secret", nil, "If-Match", etag)
	rot := f.must(t, 200, "POST", "/api/clients/svc/secret", nil)
	var rc struct {
		Secret string `json:"client_secret"`
	}
	rot.json(t, &rc)
	if rc.Secret == "" || rc.Secret == cred.Secret || f.lastAudit(t).Action != "client.rotate_secret" {
		t.Fatalf("rotate: %s", rot.body)
	}
	f.must(t, 204, "DELETE", "/api/clients/svc", nil)
	var app map[string]any
	f.must(t, 200, "GET", "/api/applications/svc", nil).json(t, &app)
	if app["name"] != "Service 2" || app["oauth"] != nil {
		t.Fatalf("application after client delete: %v", app)
	}
	var list struct {
		Clients []json.RawMessage `json:"clients"`
		Total   int               `json:"total"`
	}
	f.must(t, 200, "GET", "/api/clients", nil).json(t, &list)
	if list.Total != 0 {
		t.Fatalf("list after delete: %+v", list)
	}
}
