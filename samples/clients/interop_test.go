// Package clients holds interop checks: relying-party code in other
// ecosystems verifying what claimsmith mints. interop_test.go builds the
// claimsmith binary, starts `claimsmith serve` on loopback, mints tokens with
// `claimsmith token mint` and runs verify.mjs (npm jose) against it.
package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const sampleDoc = `{"configuration":[],
 "groups":[{"_id":"g1","name":"eng","members":["auth0|alice"],"roles":["r1"]}],
 "roles":[{"_id":"r1","name":"editor","applicationType":"client","applicationId":"app1","permissions":["p1"]}],
 "permissions":[{"_id":"p1","name":"write:docs","applicationType":"client","applicationId":"app1"}]}`

func TestNodeJoseInterop(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the interop check needs Node.js 20+ and npm")
	}
	dir, _ := os.Getwd()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose")); err != nil {
		run(t, dir, nil, "npm", "ci", "--no-audit", "--no-fund")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "claimsmith")
	run(t, dir, nil, "go", "build", "-o", bin, "github.com/claimsmith/claimsmith/cmd/claimsmith")
	if err := os.WriteFile(filepath.Join(tmp, "doc.json"), []byte(sampleDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			data := filepath.Join(tmp, "data-"+alg)
			run(t, tmp, nil, bin, "--data-dir", data, "import", filepath.Join(tmp, "doc.json"))
			addr := freeAddr(t)
			base := "http://" + addr
			cfg := filepath.Join(tmp, "claimsmith-"+alg+".yaml")
			conf := fmt.Sprintf(`server:
  addr: %s
tokens:
  issuer: %s
  algorithm: %s
  introspection:
    clients:
      - client_id: orders-api
        secret_env: INTEROP_SECRET
pipeline:
  namespace: https://example.com/
  rules:
    - rule: authorization
    - rule: required-roles
`, addr, base, alg)
			if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			env := []string{"INTEROP_SECRET=s3cr3t-for-the-interop-check"}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv := exec.CommandContext(ctx, bin, "--data-dir", data, "--config", cfg, "serve")
			srv.Env = append(os.Environ(), env...)
			var srvLog bytes.Buffer
			srv.Stdout, srv.Stderr = &srvLog, &srvLog
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if t.Failed() {
					t.Logf("server log:\n%s", srvLog.String())
				}
			}()
			waitReady(t, base+"/readyz")

			out := run(t, tmp, env, bin, "--data-dir", data, "--config", cfg, "token", "mint",
				"--user", "auth0|alice", "--client", "app1", "--audience", "https://api.example.com", "--nonce", "n-0S6_WzA2Mj", "--scope", "openid profile read:docs")
			var minted struct {
				IDToken     string `json:"id_token"`
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(out, &minted); err != nil || minted.IDToken == "" || minted.AccessToken == "" {
				t.Fatalf("token mint printed %s (%v)", out, err)
			}
			report := run(t, dir, []string{"CLAIMSMITH_URL=" + base, "ID_TOKEN=" + minted.IDToken, "ACCESS_TOKEN=" + minted.AccessToken,
				"CLIENT_ID=app1", "AUDIENCE=https://api.example.com", "NONCE=n-0S6_WzA2Mj",
				"INTROSPECT_CLIENT=orders-api", "INTROSPECT_SECRET=s3cr3t-for-the-interop-check"}, node, "verify.mjs")
			var rep struct {
				OK     bool `json:"ok"`
				Checks []struct {
					Name string `json:"name"`
					Alg  string `json:"alg"`
				} `json:"checks"`
			}
			if err := json.Unmarshal(report, &rep); err != nil || !rep.OK || len(rep.Checks) != 8 {
				t.Fatalf("verify.mjs: %s", report)
			}
			for _, c := range rep.Checks {
				if (c.Name == "id_token" || c.Name == "access_token") && c.Alg != alg {
					t.Fatalf("%s verified with %s, want %s", c.Name, c.Alg, alg)
				}
			}
			// Graceful shutdown on SIGTERM: exit status 0.
			if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := srv.Wait(); err != nil {
				t.Fatalf("serve after SIGTERM: %v", err)
			}
		})
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 30s", url)
}
