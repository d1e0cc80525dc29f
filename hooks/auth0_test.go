package hooks_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestAuth0ActionAgainstServer runs samples/auth0/post-login-action.js under
// node:test against the native trigger served on loopback by the real
// pipeline: the Action signs with Standard Webhooks and applies the answer
// through a stub api that records the calls.
func TestAuth0ActionAgainstServer(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	ts := newDialectServer(t, nil)
	// The Action signs with the wall clock.
	ts.setNow(time.Now())
	test, err := filepath.Abs(filepath.Join("..", "samples", "auth0", "post-login-action.test.js"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", test)
	cmd.Env = append(os.Environ(),
		"CLAIMSMITH_URL="+ts.URL, "CLAIMSMITH_WEBHOOK_SECRET="+nativeSecret, "CLAIMSMITH_NS="+testNS)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node test failed: %v", err)
	}
	if ts.enricher.runs() < 2 {
		t.Fatalf("the server saw %d logins, want at least 2", ts.enricher.runs())
	}
}
