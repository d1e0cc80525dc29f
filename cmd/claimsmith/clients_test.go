package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientsCommands: `claimsmith clients` registers, lists, rotates and
// deletes store clients directly on the data dir and through a running
// server; the secret is printed by create and rotate only, and a client of
// the configuration's exchange section cannot be registered.
func TestClientsCommands(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "claimsmith.yaml")
	cfg := "tokens:\n  issuer: https://auth.example.com\nexchange:\n  enabled: true\n  clients:\n    - {client_id: cfgclient, secret_hash: \"sha256:" + strings.Repeat("0", 64) + "\"}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := []string{"--data-dir", filepath.Join(dir, "data"), "--config", cfgPath}
	run := func(args ...string) string { return mustCLI(t, "", append(d, args...)...) }
	type cred struct {
		ClientID   string   `json:"client_id"`
		Secret     string   `json:"client_secret"`
		GrantTypes []string `json:"grant_types"`
	}
	var c cred
	if err := json.Unmarshal([]byte(run("clients", "create", "svc", "--grant-types", "client_credentials,token-exchange", "--audiences", "https://api.example.com")), &c); err != nil || c.Secret == "" ||
		strings.Join(c.GrantTypes, " ") != "client_credentials urn:ietf:params:oauth:grant-type:token-exchange" {
		t.Fatalf("create: %v %+v", err, c)
	}
	if out := run("clients", "list"); !strings.Contains(out, `"svc"`) || strings.Contains(out, c.Secret) || strings.Contains(out, "sha256") {
		t.Fatalf("list: %s", out)
	}
	if out := run("clients", "get", "svc"); strings.Contains(out, c.Secret) || !strings.Contains(out, `"has_secret": true`) {
		t.Fatalf("get: %s", out)
	}
	var r cred
	if err := json.Unmarshal([]byte(run("clients", "rotate", "svc")), &r); err != nil || r.Secret == "" || r.Secret == c.Secret {
		t.Fatalf("rotate: %v %+v", err, r)
	}
	if code, _, errs := cli(t, "", append(d, "clients", "create", "cfgclient")...); code != 1 || !strings.Contains(errs, "exchange section") {
		t.Fatalf("configured id: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", append(d, "clients", "create", "x", "--grant-types", "password")...); code != 1 || !strings.Contains(errs, "grant_types") {
		t.Fatalf("bad grant: %d %s", code, errs)
	}
	if out := run("clients", "delete", "svc"); !strings.Contains(out, "ok: clients delete") {
		t.Fatalf("delete: %s", out)
	}
	if code, _, _ := cli(t, "", append(d, "clients", "get", "svc")...); code != 1 {
		t.Fatalf("get after delete: %d", code)
	}

	// Through a running server.
	key := strings.TrimSpace(run("admin-key", "create", "--name", "ops", "--scopes", "all"))
	base, _ := serveInBackground(t, d)
	srv := []string{"--server", base, "--key", key}
	if err := json.Unmarshal([]byte(run(append([]string{"clients", "create", "m2m", "--grant-types", "client_credentials"}, srv...)...)), &c); err != nil || c.Secret == "" {
		t.Fatalf("create via server: %v %+v", err, c)
	}
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("m2m", c.Secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("token of a client registered through the CLI: %d", res.StatusCode)
	}
	if out := run(append([]string{"clients", "list"}, srv...)...); !strings.Contains(out, `"m2m"`) || strings.Contains(out, c.Secret) {
		t.Fatalf("list via server: %s", out)
	}
}
