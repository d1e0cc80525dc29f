package setup

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// TestTryLoginUsesTheServingPipeline: the dashboard's dry-run door runs
// the server's pipeline over its store (the new role is in the claims at
// once, through the policy cache) and persists nothing; a configuration
// without hooks serves no pipeline and says so.
func TestTryLoginUsesTheServingPipeline(t *testing.T) {
	ctx := context.Background()
	build := func(t *testing.T, conf string) *Server {
		dir := t.TempDir()
		path := filepath.Join(dir, "claimsmith.yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"T_WEBHOOK": "whsec_Y2xhaW1zbWl0aC1kZXYtd2ViaG9vay1zZWNyZXQtMzJi"}
		s, err := Build(ctx, cfg, Options{Env: Env{DataDir: filepath.Join(dir, "data"), Getenv: func(k string) string { return env[k] },
			Log: slog.New(slog.DiscardHandler)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	const conf = `pipeline:
  namespace: https://example.com/
  rules:
    - rule: authorization
      config:
        persist: {groups: true, roles: true}
tokens:
  issuer: https://auth.example.com
hooks:
  native:
    callers:
      - name: idp
        webhook_secret_env: T_WEBHOOK
`
	s := build(t, conf)
	doc := &authz.Document{
		Groups: []authz.Group{{ID: "g", Name: "G", Members: []string{"auth0|alice"}, Roles: []string{"r"}}},
		Roles:  []authz.Role{{ID: "r", Name: "editor", ApplicationID: "app"}},
	}
	if _, err := s.Store().Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		t.Fatal(err)
	}
	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin, User: runtime.User{UserID: "auth0|alice"}, Client: runtime.Client{ClientID: "app"}}
	res, err := s.tryLogin().DryRun(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Decision.Allowed || !strings.Contains(compactClaims(res.IDTokenClaims), "editor") || len(res.AppMetadata) == 0 {
		t.Fatalf("dry run: %+v", res)
	}
	if p, _ := s.Store().Profile(ctx, "auth0|alice"); len(p.AppMetadata) != 0 {
		t.Fatalf("the dry run persisted %v", p.AppMetadata)
	}

	bare := build(t, strings.Split(conf, "hooks:")[0])
	if _, err := bare.tryLogin().DryRun(ctx, ev); !errors.Is(err, hooks.ErrNoPipeline) {
		t.Fatalf("without hooks: %v", err)
	}
}

func compactClaims(c runtime.Claims) string {
	var b strings.Builder
	for _, x := range c {
		b.WriteString(x.Name)
		b.WriteString("=")
		if s, ok := x.Value.([]string); ok {
			b.WriteString(strings.Join(s, ","))
		}
		b.WriteString(" ")
	}
	return b.String()
}
