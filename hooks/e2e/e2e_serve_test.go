package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
)

// TestHydraEndToEndServe runs the product as `claimsmith serve` builds it
// (runtime/setup from a config file whose hooks section enables the Hydra
// dialect, the file store in a data dir, the key from the environment),
// in this process, behind a real Ory Hydra. Then it stops claimsmith
// gracefully and shows Hydra failing closed, and reads the persisted
// app_metadata from the store. (cmd/claimsmith tests the binary itself.)
func TestHydraEndToEndServe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a real Ory Hydra; skipped with -short")
	}
	hydraBin := buildHydra(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := fmt.Sprintf(`server:
  addr: %s
pipeline:
  namespace: %s
  rules:
    - rule: authorization
      config:
        persist: {groups: true, roles: true, permissions: true}
    - rule: required-roles
hooks:
  hydra:
    header: Authorization
    api_key_env: E2E_HYDRA_API_KEY
    connection: hydra
`, addr, hookstest.NS)
	srv, _, _ := serveConfig(t, t.TempDir(), conf, map[string]string{"E2E_HYDRA_API_KEY": hydraAPIKey}, nil)

	publicPort, adminPort := freePort(t), freePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", publicPort)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	startHydra(t, t.Context(), hydraBin, hydraConfig(t, publicPort, adminPort, srv.url), admin)
	createClient(t, admin, map[string]any{
		"client_id": hookstest.PortalClient, "client_secret": portalSecret,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid offline email", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "client_secret_basic",
	})
	createClient(t, admin, map[string]any{
		"client_id": hookstest.BatchClient, "client_secret": batchSecret,
		"grant_types": []string{"client_credentials"}, "scope": "reports",
		"token_endpoint_auth_method": "client_secret_basic",
	})

	cc := tokenRequest(t, public, hookstest.BatchClient, batchSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
	if cc.status != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", cc.status, cc.raw)
	}
	if ext, _ := jwtClaims(t, cc.AccessToken)["ext"].(map[string]any); !reflect.DeepEqual(ext[hookstest.NS+"permissions"], []any{"reports:run"}) {
		t.Errorf("M2M access token ext = %v", ext)
	}

	code := authorize(t, public, admin, "alice", map[string]any{"email": "alice@example.com"}, nil)
	tok := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}})
	if tok.status != http.StatusOK {
		t.Fatalf("authorization_code: %d %s", tok.status, tok.raw)
	}
	id := jwtClaims(t, tok.IDToken)
	if !reflect.DeepEqual(id[hookstest.NS+"groups"], []any{"Staff", "Engineering", "Backend"}) || id["sid"] == nil {
		t.Errorf("ID token = %v", id)
	}

	code = authorize(t, public, admin, "bob", nil, nil)
	denied := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}})
	if denied.Error != "access_denied" || denied.AccessToken != "" {
		t.Errorf("bob: %d %s, want access_denied", denied.status, denied.raw)
	}

	// Graceful stop, then Hydra has nobody to ask: it must refuse.
	if err := srv.stop(); err != nil {
		t.Fatalf("serve after the stop: %v", err)
	}
	down := tokenRequest(t, public, hookstest.BatchClient, batchSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
	if down.status == http.StatusOK || down.AccessToken != "" {
		t.Fatalf("token issued with claimsmith stopped: %d %s", down.status, down.raw)
	}

	prof, err := srv.srv.Store().Profile(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(prof.AppMetadata)
	var meta map[string]map[string][]string
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("app_metadata: %v: %s", err, raw)
	}
	if got := meta["authorization"]["roles"]; !reflect.DeepEqual(got, []string{"portal-viewer", "portal-editor"}) {
		t.Errorf("persisted app_metadata.authorization.roles = %v (%s)", got, raw)
	}
}
