package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
)

// runCLI runs claimsmith in-process and returns its exit status and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

const tokenTestDoc = `{"configuration":[],
 "groups":[{"_id":"g1","name":"eng","members":["auth0|alice"],"roles":["r1"]}],
 "roles":[{"_id":"r1","name":"editor","applicationType":"client","applicationId":"app1","permissions":["p1"]}],
 "permissions":[{"_id":"p1","name":"write:docs","applicationType":"client","applicationId":"app1"}],
 "claimsmith":{"applications":[{"client_id":"app1","name":"Docs","metadata":{"required_roles":"editor"}}]}}`

func tokenTestSetup(t *testing.T, tokens string) (data, cfg string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	cfg = filepath.Join(dir, "claimsmith.yaml")
	doc := filepath.Join(dir, "doc.json")
	if err := os.WriteFile(doc, []byte(tokenTestDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "tokens:\n" + tokens + "pipeline:\n  namespace: https://example.com/\n  rules:\n    - rule: authorization\n    - rule: required-roles\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "", "--data-dir", data, "import", doc); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	return data, cfg
}

func TestTokenMintVerifyIntrospect(t *testing.T) {
	data, cfg := tokenTestSetup(t, "  issuer: https://auth.example.com\n  algorithm: EdDSA\n")
	code, out, stderr := runCLI(t, "", "--data-dir", data, "--config", cfg, "token", "mint", "--user", "auth0|alice", "--client", "app1", "--audience", "https://api.example.com")
	if code != 0 {
		t.Fatalf("mint: %d %s", code, stderr)
	}
	var m struct {
		IDToken, AccessToken, Scope string `json:"-"`
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	m.IDToken, _ = raw["id_token"].(string)
	m.AccessToken, _ = raw["access_token"].(string)
	if m.IDToken == "" || m.AccessToken == "" {
		t.Fatalf("mint output %s", out)
	}
	code, out, stderr = runCLI(t, "", "--data-dir", data, "--config", cfg, "token", "verify", "--audience", "https://api.example.com", m.AccessToken)
	if code != 0 || !strings.Contains(out, `"https://example.com/permissions"`) || !strings.Contains(stderr, "alg EdDSA") {
		t.Fatalf("verify: %d %s %s", code, out, stderr)
	}
	code, out, _ = runCLI(t, m.IDToken+"\n", "--data-dir", data, "--config", cfg, "token", "verify", "--id-token", "-")
	if code != 0 || !strings.Contains(out, `"aud": "app1"`) {
		t.Fatalf("verify id token from stdin: %d %s", code, out)
	}
	// The ID token is not an access token: exit 1 saying why.
	code, _, stderr = runCLI(t, "", "--data-dir", data, "--config", cfg, "token", "verify", m.IDToken)
	if code != 1 || !strings.Contains(stderr, "wrong token type") {
		t.Fatalf("verify id token as access token: %d %s", code, stderr)
	}
	code, out, _ = runCLI(t, "", "--data-dir", data, "--config", cfg, "token", "introspect", "--live", m.AccessToken)
	if code != 0 || !strings.Contains(out, `"active": true`) || !strings.Contains(out, `"https://example.com/groups"`) {
		t.Fatalf("introspect: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", "--data-dir", data, "--config", cfg, "token", "introspect", "garbage")
	if code != 0 || strings.TrimSpace(out) != `{"active": false}` && strings.Join(strings.Fields(out), "") != `{"active":false}` {
		t.Fatalf("introspect garbage: %d %q", code, out)
	}
	// A user without the required role is denied: exit 3, no tokens.
	code, out, stderr = runCLI(t, "", "--data-dir", data, "--config", cfg, "token", "mint", "--user", "auth0|bob", "--client", "app1")
	if code != 3 || strings.Contains(out, "access_token") || !strings.Contains(stderr, "required-roles") {
		t.Fatalf("denied mint: %d %s %s", code, out, stderr)
	}
}

func TestKeysRotateAndList(t *testing.T) {
	data, cfg := tokenTestSetup(t, "  algorithm: ES256\n  propagation_delay: 10m\n")
	code, out, stderr := runCLI(t, "", "--data-dir", data, "--config", cfg, "keys", "list")
	if code != 0 || !strings.Contains(out, "no keys yet") {
		t.Fatalf("list on empty: %d %s %s", code, out, stderr)
	}
	if code, out, _ = runCLI(t, "", "--data-dir", data, "--config", cfg, "keys", "rotate"); code != 0 || !strings.Contains(out, "active now") {
		t.Fatalf("first rotate: %d %s", code, out)
	}
	if code, out, _ = runCLI(t, "", "--data-dir", data, "--config", cfg, "keys", "rotate", "--alg", "RS256"); code != 0 || !strings.Contains(out, "as next") {
		t.Fatalf("rotate: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", "--data-dir", data, "--config", cfg, "keys", "list", "--json")
	var infos []struct{ Alg, State string }
	if err := json.Unmarshal([]byte(out), &infos); err != nil || code != 0 {
		t.Fatalf("list --json: %s %v", out, err)
	}
	if len(infos) != 2 || infos[0].Alg != "ES256" || infos[0].State != "active" || infos[1].Alg != "RS256" || infos[1].State != "next" {
		t.Fatalf("keys after rotate: %+v", infos)
	}
	fis, _ := os.ReadDir(filepath.Join(data, "keys"))
	for _, fi := range fis {
		info, _ := fi.Info()
		if info.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v", fi.Name(), info.Mode().Perm())
		}
	}
	if code, _, stderr = runCLI(t, "", "--data-dir", data, "--config", cfg, "keys", "rotate", "--alg", "HS256"); code != 2 || !strings.Contains(stderr, "HS256") {
		t.Fatalf("rotate HS256: %d %s", code, stderr)
	}
	// Both rotations are in the admin audit log as the OS user, naming the
	// kids; the refused one is not.
	audit, err := adminfile.OpenAuditLog(filepath.Join(data, adminfile.Dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := audit.List(t.Context(), admin.AuditQuery{PerPage: 10, Action: admin.ActionKeysRotate})
	if err != nil || page.Total != 2 {
		t.Fatalf("keys.rotate records: %+v %v", page, err)
	}
	var kids []struct {
		ID string `json:"kid"`
	}
	_, out, _ = runCLI(t, "", "--data-dir", data, "--config", cfg, "keys", "list", "--json")
	_ = json.Unmarshal([]byte(out), &kids)
	rec := page.Records[0]
	if len(kids) != 2 || rec.KeyName != cliKeyName() || rec.EntityID != kids[1].ID || !strings.Contains(string(rec.After), `"retires":"`+kids[0].ID+`"`) {
		t.Fatalf("record %+v (keys %+v)", rec, kids)
	}
}

func TestTokenConfigErrors(t *testing.T) {
	for name, c := range map[string]struct{ tokens, want string }{
		"unknown key":         {"  issuer: https://a.example.com\n  lifetime: 1h\n", `claimsmith.yaml:3: key "tokens.lifetime": unknown key`},
		"unknown nested key":  {"  introspection:\n    clients:\n      - client_id: rs\n        secret: x\n", `claimsmith.yaml:5: key "tokens.introspection.clients[0].secret": unknown key`},
		"bad algorithm":       {"  algorithm: HS256\n", "HS256"},
		"bad issuer":          {"  issuer: auth.example.com\n", "issuer"},
		"secret env missing":  {"  introspection:\n    clients:\n      - client_id: rs\n        secret_env: CLAIMSMITH_TEST_UNSET_VAR\n", "CLAIMSMITH_TEST_UNSET_VAR is empty"},
		"both secrets":        {"  introspection:\n    clients:\n      - client_id: rs\n        secret_env: X\n        secret_hash: sha256:00\n", "exactly one"},
		"bad hash":            {"  introspection:\n    clients:\n      - client_id: rs\n        secret_hash: md5:00\n", `claimsmith.yaml:5: key "tokens.introspection.clients[0].secret_hash": must start with`},
		"lifetime not a time": {"  lifetimes: {access_token: soon}\n", "soon"},
	} {
		t.Run(name, func(t *testing.T) {
			data, cfg := tokenTestSetup(t, c.tokens)
			code, _, stderr := runCLI(t, "", "--data-dir", data, "--config", cfg, "token", "verify", "x")
			if code != 1 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q, want it to mention %q", code, stderr, c.want)
			}
		})
	}
}

func TestHashSecret(t *testing.T) {
	code, out, _ := runCLI(t, "hunter2\n", "token", "hash-secret")
	if code != 0 || strings.TrimSpace(out) != "sha256:f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7" {
		t.Fatalf("%d %q", code, out)
	}
	code, out, _ = runCLI(t, "", "token", "hash-secret", "--generate")
	if code != 0 || !strings.Contains(out, "secret: ") || !strings.Contains(out, "secret_hash: sha256:") {
		t.Fatalf("generate: %d %q", code, out)
	}
}

// TestTokenMintSampleEvent mints as the README's first hour does: the
// make run data and config with the development secrets. The event is the
// stored profile plus the flags; a deny names the rule and its reason.
func TestTokenMintSampleEvent(t *testing.T) {
	for k, v := range devSecrets {
		t.Setenv(k, v)
	}
	data := filepath.Join(t.TempDir(), "data")
	if code, _, stderr := runCLI(t, "", "--data-dir", data, "import", "../../samples/data/claimsmith-full.json"); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	cfg := "../../samples/config/claimsmith.yaml"
	mint := func(args ...string) (int, string, string) {
		return runCLI(t, "", append([]string{"--data-dir", data, "--config", cfg, "token", "mint", "--user", "auth0|alice", "--client", "portal-client"}, args...)...)
	}

	// Without the email flags the sample pipeline's first rule denies.
	code, out, stderr := mint()
	if code != 3 || strings.Contains(out, "access_token") ||
		!strings.Contains(stderr, `denied by rule "verified-email" (unauthorized): Please verify your email before logging in.`) {
		t.Fatalf("mint without email: %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = mint("--email", "alice@example.com", "--email-verified", "--claim", "name=Alice", "--claim", "user_metadata.team=blue")
	if code != 0 {
		t.Fatalf("mint: %d %s", code, stderr)
	}
	var m struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.AccessToken == "" || m.IDToken == "" {
		t.Fatalf("mint output %s (%v)", out, err)
	}
	code, out, stderr = runCLI(t, "", "--data-dir", data, "--config", cfg, "token", "verify", "--id-token", m.IDToken)
	// plan comes from alice's stored profile (app_metadata), merged in
	// as at a login through the hooks.
	if code != 0 || !strings.Contains(out, `"https://example.com/plan": "enterprise"`) || !strings.Contains(out, `"https://example.com/roles"`) {
		t.Fatalf("verify: %d %s %s", code, out, stderr)
	}

	// A misspelt --claim names the field instead of being ignored.
	if code, _, stderr = mint("--claim", "emial=x"); code != 2 || !strings.Contains(stderr, `unknown field "emial"`) {
		t.Fatalf("misspelt claim: %d %s", code, stderr)
	}
	if code, _, stderr = mint("--claim", "=x"); code != 2 || !strings.Contains(stderr, "KEY=VALUE") {
		t.Fatalf("empty claim key: %d %s", code, stderr)
	}
	// Without --config: a usage error saying what to pass.
	code, _, stderr = runCLI(t, "", "--data-dir", data, "token", "mint", "--user", "auth0|alice", "--client", "portal-client")
	if code != 2 || !strings.Contains(stderr, "--config FILE") || !strings.Contains(stderr, "make -s dev-env") {
		t.Fatalf("mint without --config: %d %s", code, stderr)
	}
}

func TestMintUserClaims(t *testing.T) {
	u, err := mintUser("u1", "a@example.com", true, []string{"g"}, []string{"name=Ann", "app_metadata.plan=\"pro\"", "app_metadata.seats=3", "logins_count=7"})
	if err != nil {
		t.Fatal(err)
	}
	if u.UserID != "u1" || u.Email != "a@example.com" || !u.EmailVerified || u.Name != "Ann" || u.LoginsCount != 7 ||
		u.AppMetadata["plan"] != "pro" || u.AppMetadata["seats"] != float64(3) || len(u.Groups) != 1 {
		t.Fatalf("%+v", u)
	}
	if _, err := mintUser("u1", "", false, nil, []string{"email_verified=maybe"}); err == nil {
		t.Fatal("a string for email_verified was accepted")
	}
}
