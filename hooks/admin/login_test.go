package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
)

// TestAdminChangeReachesNextLogin: a change made through the admin API is in
// the very next login's claims, through the real pipeline (authorization
// and required-roles rules) behind POST /hooks/v1/post-login, on the same
// server and store.
func TestAdminChangeReachesNextLogin(t *testing.T) {
	const ns = "https://claims.example.com/"
	forEachStore(t, func(t *testing.T, f *adminFixture) {
		reg, err := rules.NewRegistry(rules.Deps{Resolver: f.store, Settings: f.store, Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		p, err := runtime.NewPipeline(context.Background(), runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{
			{Rule: rules.IDAuthorization, Config: map[string]any{
				"access_token": map[string]any{"groups": true, "roles": true, "permissions": true}}},
			{Rule: rules.IDRequiredRoles},
		}}, runtime.Deps{Registry: reg, Clients: rules.ClientDirectory(f.store), Profiles: f.store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		native := &login.Handler{Name: "native", Run: p, Log: slog.New(slog.DiscardHandler),
			Dialect: &login.Native{Trigger: runtime.TriggerPostLogin, Callers: []login.Caller{{Name: "idp", Bearer: hooks.NewKeySet("idp-key")}}}}
		routes := append(f.api.ServerRoutes(), hooks.Route{Pattern: "POST /hooks/v1/post-login", Handler: native})
		mux, err := hooks.NewMux(routes, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(mux) // admin API and login hook on one server
		t.Cleanup(srv.Close)
		f.srv = srv

		signIn := func() login.NativeResponse {
			t.Helper()
			ev := `{"user":{"user_id":"auth0|alice","email":"alice@example.com"},"client":{"client_id":"portal"},"connection":{"name":"corp-ad"}}`
			req, _ := http.NewRequest("POST", srv.URL+"/hooks/v1/post-login", bytes.NewReader([]byte(ev)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer idp-key")
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out login.NativeResponse
			if res.StatusCode != 200 {
				t.Fatalf("post-login: %d", res.StatusCode)
			}
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			return out
		}
		claim := func(r login.NativeResponse, name string) []string {
			t.Helper()
			v, ok := r.AccessTokenClaims.Get(ns + name)
			if !ok {
				return nil
			}
			var out []string
			b, _ := json.Marshal(v)
			_ = json.Unmarshal(b, &out)
			return out
		}

		f.must(t, 201, "POST", "/api/permissions", map[string]any{"_id": "p-write", "name": "write:docs", "applicationType": "client", "applicationId": "portal"})
		f.must(t, 201, "POST", "/api/roles", map[string]any{"_id": "r-editor", "name": "editor", "applicationType": "client", "applicationId": "portal", "permissions": []string{"p-write"}})
		f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g-eng", "name": "Engineering"})
		f.must(t, 204, "PATCH", "/api/groups/g-eng/roles", []string{"r-editor"})

		if r := signIn(); !r.Decision.Allowed || len(claim(r, "groups")) != 0 || len(claim(r, "roles")) != 0 {
			t.Fatalf("before any membership: %+v", r)
		}
		// Add alice to the group by name: the next login has the group, its
		// role and the role's permission.
		f.must(t, 204, "PATCH", "/api/users/auth0%7Calice/groups", []string{"Engineering"})
		r := signIn()
		if !slices.Equal(claim(r, "groups"), []string{"Engineering"}) || !slices.Equal(claim(r, "roles"), []string{"editor"}) ||
			!slices.Equal(claim(r, "permissions"), []string{"write:docs"}) {
			t.Fatalf("after adding to the group: %+v", r.AccessTokenClaims)
		}
		// A mapping from an IdP group (nested under Engineering) is picked up
		// as well.
		f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g-ad", "name": "AD Staff"})
		f.must(t, 204, "PATCH", "/api/groups/g-ad/mappings", []map[string]string{{"groupName": "Engineering", "connectionName": "corp-ad"}})
		if r := signIn(); !slices.Equal(claim(r, "groups"), []string{"Engineering", "AD Staff"}) {
			t.Fatalf("after adding a mapping: %v", claim(r, "groups"))
		}
		// The application's required_roles gate, set through the API.
		f.must(t, 201, "POST", "/api/applications", map[string]any{"client_id": "portal", "name": "Portal", "metadata": map[string]string{"required_roles": "admin"}})
		if r := signIn(); r.Decision.Allowed {
			t.Fatalf("required_roles admin should deny: %+v", r.Decision)
		}
		f.must(t, 200, "PUT", "/api/applications/portal", map[string]any{"name": "Portal", "metadata": map[string]string{"required_roles": "editor"}})
		if r := signIn(); !r.Decision.Allowed {
			t.Fatalf("required_roles editor should allow: %+v", r.Decision)
		}
		// Removing alice from every group takes it all away at the next login.
		f.must(t, 204, "DELETE", "/api/users/auth0%7Calice/groups?all=true", nil)
		r = signIn()
		if r.Decision.Allowed || len(claim(r, "roles")) != 0 {
			t.Fatalf("after removal: %+v %+v", r.Decision, r.AccessTokenClaims)
		}
	})
}
