package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
)

// TestHydraEndToEndServe runs the product as shipped: the `claimsmith`
// binary (`serve` with a config file whose hooks section enables the Hydra
// dialect, the file store in a data dir, the key from the environment)
// behind a real Ory Hydra. Then it stops claimsmith with SIGTERM and shows
// Hydra failing closed, and reads the persisted app_metadata with
// `claimsmith users get`.
func TestHydraEndToEndServe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a real Ory Hydra; skipped with -short")
	}
	hydraBin := buildHydra(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "claimsmith")
	cmdOut(t, exec.Command("go", "build", "-o", bin, "github.com/claimsmith/claimsmith/cmd/claimsmith"))

	doc, err := json.Marshal(hookstest.Document(hookstest.PortalClient, hookstest.BatchClient))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(tmp, "data")
	docPath := filepath.Join(tmp, "authz.json")
	if err := os.WriteFile(docPath, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	cmdOut(t, exec.Command(bin, "--data-dir", data, "import", docPath))

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(tmp, "claimsmith.yaml")
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
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var srvLog syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "--data-dir", data, "--config", cfg, "serve")
	srv.Env = append(os.Environ(), "E2E_HYDRA_API_KEY="+hydraAPIKey)
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
		if t.Failed() {
			t.Logf("claimsmith serve output:\n%s", srvLog.String())
		}
	})
	waitHTTP(t, "http://"+addr+"/readyz", 30*time.Second)

	publicPort, adminPort := freePort(t), freePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", publicPort)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	startHydra(t, t.Context(), hydraBin, hydraConfig(t, publicPort, adminPort, "http://"+addr), admin)
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
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	stopped = true
	down := tokenRequest(t, public, hookstest.BatchClient, batchSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
	if down.status == http.StatusOK || down.AccessToken != "" {
		t.Fatalf("token issued with claimsmith stopped: %d %s", down.status, down.raw)
	}

	prof := cmdOut(t, exec.Command(bin, "--data-dir", data, "users", "get", "alice"))
	var p struct {
		AppMetadata map[string]map[string][]string `json:"app_metadata"`
	}
	if err := json.Unmarshal(prof, &p); err != nil {
		t.Fatalf("users get: %v: %s", err, prof)
	}
	if got := p.AppMetadata["authorization"]["roles"]; !reflect.DeepEqual(got, []string{"portal-viewer", "portal-editor"}) {
		t.Errorf("persisted app_metadata.authorization.roles = %v (%s)", got, prof)
	}
}

func cmdOut(t *testing.T, cmd *exec.Cmd) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", cmd, err, out, stderr.String())
	}
	return out
}

func waitHTTP(t *testing.T, u string, max time.Duration) {
	t.Helper()
	deadline := time.Now().Add(max)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s (%v)", u, max, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
