package e2e_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
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
	// The native trigger as serve builds it from the hooks section, with
	// the wall clock the Action signs with.
	key := []byte("native-webhook-key-0123456789")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	rec := &hookstest.Recorder{Next: hookstest.NewPipeline(t, hookstest.NewStore(t, hookstest.PortalClient, hookstest.BatchClient))}
	set, err := (&login.Config{Native: &login.NativeConfig{Callers: []login.CallerConfig{{Name: "auth0", WebhookSecret: secret}}}}).
		Build(login.Deps{Enricher: rec, Namespace: hookstest.NS, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	set.Register(mux.Handle)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	test, err := filepath.Abs(filepath.Join("..", "..", "samples", "auth0", "post-login-action.test.js"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", test)
	cmd.Env = append(os.Environ(),
		"CLAIMSMITH_URL="+ts.URL, "CLAIMSMITH_WEBHOOK_SECRET="+secret, "CLAIMSMITH_NS="+hookstest.NS)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node test failed: %v", err)
	}
	if rec.Runs() < 2 {
		t.Fatalf("the server saw %d logins, want at least 2", rec.Runs())
	}
}
