package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJSRuleWithNow: a `js:` entry runs in `claimsmith test`, and --now
// pins the clock the script sees (new Date()), as for WebAssembly rules.
// The binary runs it: the race-instrumented wazero compiling the engine
// (when its on-disk cache is cold) took minutes.
func TestJSRuleWithNow(t *testing.T) {
	t.Parallel()
	bin := buildClaimsmith(t)
	dir := t.TempDir()
	write := func(name, src string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("day.js", `function (user, context, callback) {
  context.idToken['https://example.com/day'] = new Date().toISOString().slice(0, 10);
  callback(null, user, context);
}`)
	cfg := write("claimsmith.yaml", `pipeline:
  namespace: https://example.com/
  rules:
    - js: day.js
      timeout: 2s
`)
	stdout, stderr, code := runBinary(t, bin, "test", "--config", cfg, "--now", "2026-11-21T10:00:00Z",
		"--data", "samples/data/claimsmith-full.json", "--event", "samples/events/employee.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{`https://example.com/day = "2026-11-21"`, "1. day [js] abstain"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	// The migration helper: exit 1 and the API named for a file that needs changes.
	bad := write("bad.js", "exports.onExecutePostLogin = async (event, api) => {\n  api.redirect.sendUserTo('https://example.com');\n};\n")
	var out, errb bytes.Buffer
	code = run(context.Background(), []string{"js", "check", filepath.Join(dir, "day.js"), bad}, strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "line 2  api.redirect  UNSUPPORTED") || !strings.Contains(out.String(), "day.js: Auth0 Rule") {
		t.Fatalf("js check: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}
