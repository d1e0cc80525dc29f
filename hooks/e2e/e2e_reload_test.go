package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
)

// TestServeReload runs the shipped binary: `claimsmith serve` with a config
// file, then changes the rules in the file and reloads with SIGHUP and with
// POST /api/reload (admin key with write:authz). Each good change shows in
// the next login; each broken file is rejected with the reason (logged, and
// 400 on the endpoint) while the previous rules keep serving. /metrics and
// /readyz report the generations and the pipeline.
func TestServeReload(t *testing.T) {
	const nativeBearer = "native-bearer-key-0123456789"
	if testing.Short() {
		t.Skip("builds and runs the claimsmith binary; skipped with -short")
	}
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
	out := cmdOut(t, exec.Command(bin, "--data-dir", data, "admin-key", "create", "--name", "ops", "--scopes", "write"))
	lines := strings.Fields(strings.TrimSpace(string(out)))
	adminKey := lines[len(lines)-1]
	out = cmdOut(t, exec.Command(bin, "--data-dir", data, "admin-key", "create", "--name", "viewer", "--scopes", "read"))
	lines = strings.Fields(strings.TrimSpace(string(out)))
	readKey := lines[len(lines)-1]

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(tmp, "claimsmith.yaml")
	writeConfig := func(rules string) {
		t.Helper()
		conf := fmt.Sprintf("server:\n  addr: %s\npipeline:\n  namespace: %s\n  rules:\n%shooks:\n  native:\n    callers:\n      - name: idp\n        bearer_key_env: E2E_NATIVE_KEY\n", addr, hookstest.NS, rules)
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const (
		base     = "    - rule: authorization\n    - rule: required-roles\n"
		withPlan = base + "    - rule: copy-metadata-claims\n      config:\n        app_metadata: [plan]\n"
		broken   = base + "    - rule: copy-metadata-claims\n      config:\n        app_metadta: [plan]\n"
	)
	writeConfig(base)

	var srvLog syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "--data-dir", data, "--config", cfg, "serve")
	srv.Env = append(os.Environ(), "E2E_NATIVE_KEY="+nativeBearer)
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
	url := "http://" + addr
	waitHTTP(t, url+"/readyz", 30*time.Second)

	login := func() login.NativeResponse {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url+"/hooks/v1/post-login", bytes.NewReader(hookstest.Event()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+nativeBearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var ans login.NativeResponse
		if resp.StatusCode != 200 || json.Unmarshal(b, &ans) != nil {
			t.Fatalf("login: %d %s", resp.StatusCode, b)
		}
		return ans
	}
	// plan is the claim copy-metadata-claims adds from app_metadata.plan.
	plan := func() any {
		t.Helper()
		ans := login()
		if !ans.Decision.Allowed {
			t.Fatalf("login denied: %+v", ans.Decision)
		}
		v, _ := ans.AccessTokenClaims.Get(hookstest.NS + "plan")
		return v
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	reload := func(key string) (int, hooks.ErrorBody, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url+"/api/reload", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var eb hooks.ErrorBody
		var ok map[string]any
		_ = json.Unmarshal(b, &eb)
		_ = json.Unmarshal(b, &ok)
		return resp.StatusCode, eb, ok
	}

	if v := plan(); v != nil {
		t.Fatalf("plan claim %v before the rule is configured", v)
	}

	// SIGHUP with a new rule: the next logins carry its claim.
	writeConfig(withPlan)
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually("the SIGHUP reload to add the plan claim", func() bool { return plan() == "gold" })

	// SIGHUP with a broken file: rejected (logged with the key), old rules serve.
	writeConfig(broken)
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually("the rejection to be logged", func() bool {
		return strings.Contains(srvLog.String(), "configuration reload rejected") && strings.Contains(srvLog.String(), "app_metadta")
	})
	if v := plan(); v != "gold" {
		t.Fatalf("after a rejected reload: plan = %v, want the previous rules (gold)", v)
	}

	// The endpoint: read-only key refused, broken file 400, good file 200.
	if st, eb, _ := reload(readKey); st != http.StatusForbidden {
		t.Errorf("reload with a read key: %d %+v, want 403", st, eb)
	}
	st, eb, _ := reload(adminKey)
	if st != http.StatusBadRequest || !strings.Contains(eb.Description, "app_metadta") || !strings.Contains(eb.Description, cfg) {
		t.Fatalf("reload of a broken file: %d %+v, want 400 naming the file and key", st, eb)
	}
	if v := plan(); v != "gold" {
		t.Fatalf("after a rejected reload: plan = %v, want gold", v)
	}
	// A module that does not compile is caught before the swap.
	if err := os.WriteFile(filepath.Join(tmp, "bad.wasm"), []byte("\x00asm\x01\x00\x00\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(withPlan + "    - wasm: bad.wasm\n")
	st, eb, _ = reload(adminKey)
	t.Logf("broken module: %d %s", st, eb.Description)
	if (st != http.StatusBadRequest && st != http.StatusConflict) || !strings.Contains(eb.Description, "bad.wasm") {
		t.Fatalf("reload with a broken module: %d %+v, want 400/409 naming it", st, eb)
	}
	if v := plan(); v != "gold" {
		t.Fatalf("after a rejected module: plan = %v, want gold", v)
	}
	writeConfig(base)
	st, _, ok := reload(adminKey)
	if st != http.StatusOK || ok["generation"] != float64(3) {
		t.Fatalf("reload: %d %v, want 200 generation 3", st, ok)
	}
	if v := plan(); v != nil {
		t.Fatalf("after removing the rule: plan = %v", v)
	}

	// An admin write is seen by the very next login (the policy cache is
	// invalidated before the write returns): alice leaves Backend, loses
	// her roles and the portal's required_roles deny her.
	if ans := login(); !ans.Decision.Allowed || ans.Authorization == nil || !strings.Contains(strings.Join(ans.Authorization.Groups, ","), "Backend") {
		t.Fatalf("before the write: %+v %+v", ans.Decision, ans.Authorization)
	}
	req, _ := http.NewRequest(http.MethodDelete, url+"/api/groups/g-backend/members", strings.NewReader(`["alice"]`))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remove member: %d", resp.StatusCode)
	}
	if ans := login(); ans.Decision.Allowed {
		t.Fatalf("login right after the write still allowed: %+v", ans.Authorization)
	}

	resp, err = http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"claimsmith_config_generation 3",
		`claimsmith_config_reloads_total{result="ok"} 2`,
		`claimsmith_config_reloads_total{result="rejected"} 3`,
		`claimsmith_http_requests_total{dialect="native",route="POST /hooks/v1/post-login",status="200"}`,
		`claimsmith_rule_duration_seconds_bucket{kind="authorization",rule="authorization",le=`,
		`claimsmith_login_decisions_total{code="",outcome="allowed"}`,
		`claimsmith_login_decisions_total{code="unauthorized",outcome="denied"}`,
		`claimsmith_policy_cache_lookups_total{result="near"}`,
		`claimsmith_policy_cache_lookups_total{result="miss"}`,
		"go_goroutines",
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	resp, err = http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(ready, []byte(`"status":"ready"`)) {
		t.Errorf("/readyz: %d %s", resp.StatusCode, ready)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	stopped = true
}
