// Package upstreamop is the token exchange e2e with a real, hookless
// upstream OpenID Provider: oidc-provider (npm) logs alice in headlessly
// (op.mjs), claimsmith — assembled by runtime/setup as serve does —
// exchanges her ID token at POST /oauth2/token (RFC 8693), and the access
// token it mints is verified by npm jose (in op.mjs) and by runtime/guard.
package upstreamop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/runtime/setup"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// The upstream groups claim carries "eng"; the mapping (upstream-op, eng)
// puts alice in Engineering, whose role grants write:docs on client app.
const doc = `{"configuration":[],
 "groups":[{"_id":"g1","name":"Engineering","roles":["r1"],"mappings":[{"_id":"m1","groupName":"eng","connectionName":"upstream-op"}]},
           {"_id":"g2","name":"Staff","nested":["g1"]}],
 "roles":[{"_id":"r1","name":"editor","applicationType":"client","applicationId":"app","permissions":["p1"]}],
 "permissions":[{"_id":"p1","name":"write:docs","applicationType":"client","applicationId":"app"}]}`

type opProcess struct {
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func (p *opProcess) line(t *testing.T, v any) {
	t.Helper()
	// oidc-provider prints its development notices on stdout too.
	for p.out.Scan() && !strings.HasPrefix(p.out.Text(), "{") {
	}
	if p.out.Err() != nil || !strings.HasPrefix(p.out.Text(), "{") {
		t.Fatalf("op.mjs ended: %v", p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), v); err != nil {
		t.Fatalf("op.mjs said %q: %v", p.out.Text(), err)
	}
}

func startOP(t *testing.T) *opProcess {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: this e2e needs Node.js 20+ and npm")
	}
	dir, _ := os.Getwd()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(node, "op.mjs")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("op.mjs: %v\n%s", err, stderr.String())
		}
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &opProcess{stdin: in, out: sc}
}

func TestExchangeOIDCProviderIDToken(t *testing.T) {
	op := startOP(t)
	var login struct {
		Issuer  string `json:"issuer"`
		IDToken string `json:"id_token"`
	}
	op.line(t, &login)
	if login.IDToken == "" {
		t.Fatal("no ID token from oidc-provider")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	secretHash, err := token.HashSecret("app-secret", false)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	conf := fmt.Sprintf(`tokens:
  issuer: %s
  algorithm: ES256
pipeline:
  namespace: https://example.com/
  rules:
    - rule: authorization
      config:
        access_token: {groups: true, roles: true, permissions: true}
        persist: {groups: true, roles: true}
    - rule: required-roles
exchange:
  enabled: true
  issuers:
    - issuer: %s
      audiences: [app-at-upstream]
      algorithms: [RS256]
      connection: upstream-op
      groups_claim: groups
  clients:
    - client_id: app
      secret_hash: %q
      audiences: [https://api.example.com]
`, base, login.Issuer, secretHash)
	cfgPath := filepath.Join(tmp, "claimsmith.yaml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := setup.Build(ctx, cfg, setup.Options{Env: setup.Env{DataDir: filepath.Join(tmp, "data")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	d, err := authz.ParseDocument([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store().Apply(ctx, 0, &authz.ReplaceDocument{Doc: d}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {login.IDToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}, "scope": {"openid docs"}}
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ans map[string]any
	_ = json.NewDecoder(res.Body).Decode(&ans)
	res.Body.Close()
	if res.StatusCode != 200 || ans["access_token"] == nil || ans["id_token"] == nil {
		t.Fatalf("exchange: %d %v", res.StatusCode, ans)
	}
	at := ans["access_token"].(string)

	want := func(claims map[string]any) {
		t.Helper()
		groups := fmt.Sprint(claims["https://example.com/groups"])
		if groups != "[Engineering Staff]" || fmt.Sprint(claims["https://example.com/roles"]) != "[editor]" ||
			fmt.Sprint(claims["https://example.com/permissions"]) != "[write:docs]" || claims["sub"] != "alice" || claims["aud"] != "https://api.example.com" {
			t.Fatalf("claims %v", claims)
		}
	}
	// npm jose, through claimsmith's JWKS.
	line, _ := json.Marshal(map[string]string{"jwks_uri": base + "/.well-known/jwks.json", "issuer": base, "audience": "https://api.example.com", "token": at})
	if _, err := op.stdin.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
	var jv struct {
		OK      bool           `json:"ok"`
		Error   string         `json:"error"`
		Payload map[string]any `json:"payload"`
	}
	op.line(t, &jv)
	if !jv.OK {
		t.Fatalf("jose refused the exchanged token: %s", jv.Error)
	}
	want(jv.Payload)
	// runtime/guard, through claimsmith's discovery.
	keys, err := guard.NewRemoteKeys(guard.RemoteKeysConfig{Issuer: base})
	if err != nil {
		t.Fatal(err)
	}
	v, err := guard.NewJWTVerifier(guard.VerifierConfig{Issuer: base, Audiences: []string{"https://api.example.com"}}, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := v.Verify(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	want(gc)
	// The login persisted into alice's app_metadata.
	prof, err := srv.Store().Profile(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := prof.AppMetadata["authorization"].(map[string]any)
	if g, _ := a["groups"].([]any); !slices.Contains(g, any("Engineering")) {
		t.Fatalf("app_metadata %v", prof.AppMetadata)
	}
	// The same exchange with a wrong client secret is refused.
	req, _ = http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "wrong")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("wrong secret: %d", res.StatusCode)
	}
}
