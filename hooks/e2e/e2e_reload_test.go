package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime/admin"
)

// TestServeReload runs the server as `claimsmith serve` builds it
// (runtime/setup, in this process) from a config file, then changes the
// rules in the file and reloads as SIGHUP does (Server.Reload) and with
// POST /api/reload (admin key with write:authz). Each good change shows in
// the next login; each broken file is rejected with the reason (logged, and
// 400 on the endpoint) while the previous rules keep serving. /metrics and
// /readyz report the generations and the pipeline. (cmd/claimsmith tests
// the binary's signals themselves.)
func TestServeReload(t *testing.T) {
	const nativeBearer = "native-bearer-key-0123456789"
	if testing.Short() {
		t.Skip("serves a whole claimsmith with a file store; skipped with -short")
	}
	tmp := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := func(rules string) string {
		return fmt.Sprintf("server:\n  addr: %s\npipeline:\n  namespace: %s\n  rules:\n%shooks:\n  native:\n    callers:\n      - name: idp\n        bearer_key_env: E2E_NATIVE_KEY\n", addr, hookstest.NS, rules)
	}
	const (
		base     = "    - rule: authorization\n    - rule: required-roles\n"
		withPlan = base + "    - rule: copy-metadata-claims\n      config:\n        app_metadata: [plan]\n"
		broken   = base + "    - rule: copy-metadata-claims\n      config:\n        app_metadta: [plan]\n"
	)
	srv, cfg, keys := serveConfig(t, tmp, conf(base), map[string]string{"E2E_NATIVE_KEY": nativeBearer},
		map[string][]string{"ops": {admin.ScopeWrite}, "viewer": {admin.ScopeRead}})
	adminKey, readKey := keys["ops"], keys["viewer"]
	writeConfig := func(rules string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(conf(rules)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	url := srv.url
	srvLog := srv.log

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

	// A reload (what SIGHUP does) with a new rule: the next logins carry
	// its claim.
	writeConfig(withPlan)
	if _, err := srv.srv.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := plan(); v != "gold" {
		t.Fatalf("after the reload: plan = %v, want gold", v)
	}

	// A broken file: rejected (logged with the key), old rules serve.
	writeConfig(broken)
	if _, err := srv.srv.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "app_metadta") {
		t.Fatalf("reload of a broken file: %v", err)
	}
	if log := srvLog.String(); !strings.Contains(log, "configuration reload rejected") || !strings.Contains(log, "app_metadta") {
		t.Fatalf("the rejection is not logged:\n%s", log)
	}
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

	if err := srv.stop(); err != nil {
		t.Fatalf("serve after the stop: %v", err)
	}
}
