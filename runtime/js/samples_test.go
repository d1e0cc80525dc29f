package js

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/claimsmith/claimsmith/runtime"
)

// samplePipeline builds the pipeline of a samples/rules/<name>/claimsmith.yaml.
func samplePipeline(t *testing.T, e *Engine, name string) *runtime.Pipeline {
	t.Helper()
	dir := filepath.Join("..", "..", "samples", "rules", name)
	b, err := os.ReadFile(filepath.Join(dir, "claimsmith.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Pipeline runtime.PipelineConfig `yaml:"pipeline"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	// The samples' timeouts are for production; a loaded -race run needs
	// more.
	for i := range cfg.Pipeline.Rules {
		cfg.Pipeline.Rules[i].Timeout = "20s"
	}
	cfg.Pipeline.Timeout = "60s"
	p, err := runtime.NewPipeline(context.Background(), cfg.Pipeline, runtime.Deps{Registry: runtime.NewRegistry(), Scripts: e, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestSampleAction(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{Logger: testLogger(t)})
	p := samplePipeline(t, e, "auth0-action")
	ev := baseEvent()
	ev.Authorization = &runtime.Authorization{Roles: []string{"admin", "viewer"}}
	ev.Request.Query = map[string]string{"ui_locales": "de-CH"}
	res, err := p.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Decision.Allowed {
		t.Fatalf("denied: %+v", res.Decision)
	}
	roles, _ := res.IDTokenClaims.Get("https://example.com/roles")
	locale, _ := res.IDTokenClaims.Get("https://example.com/locale")
	if !reflect.DeepEqual(roles, []any{"admin", "viewer"}) || locale != "de-CH" {
		t.Errorf("id token claims %+v", res.IDTokenClaims)
	}
	if !reflect.DeepEqual(res.ScopesAdded, []string{"admin"}) || res.AppMetadata["last_client"] != "client-1" {
		t.Errorf("scopes %v, app_metadata %v", res.ScopesAdded, res.AppMetadata)
	}
	if len(res.Trace) != 1 || len(res.Trace[0].Log) != 1 || res.Trace[0].Log[0].Msg != "login of auth0|alice to Dashboard" {
		t.Errorf("trace %+v", res.Trace)
	}

	ev = baseEvent()
	ev.User.EmailVerified = false
	ev.Client.Metadata = map[string]string{"require_verified_email": "true"}
	res, err = p.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision.Allowed || res.Decision.Code != runtime.CodeAccessDenied {
		t.Errorf("unverified user: %+v", res.Decision)
	}

	ev = baseEvent()
	ev.Trigger = runtime.TriggerCredentialsExchange
	res, err = p.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.AccessTokenClaims.Get("https://example.com/client_name"); v != "Dashboard" {
		t.Errorf("m2m claims %+v", res.AccessTokenClaims)
	}
}

func TestSampleRule(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{Logger: testLogger(t)})
	p := samplePipeline(t, e, "auth0-rule")
	ev := baseEvent()
	ev.Authorization = &runtime.Authorization{Roles: []string{"viewer"}}
	ev.User.AppMetadata = map[string]any{"logins_here": 2}
	res, err := p.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Decision.Allowed {
		t.Fatalf("denied: %+v", res.Decision)
	}
	roles, _ := res.IDTokenClaims.Get("https://example.com/roles")
	conn, _ := res.AccessTokenClaims.Get("https://example.com/connection")
	if !reflect.DeepEqual(roles, []any{"viewer"}) || conn != "corp-ad" {
		t.Errorf("claims %+v %+v", res.IDTokenClaims, res.AccessTokenClaims)
	}
	if n, ok := res.AppMetadata["logins_here"]; !ok || toFloat(n) != 3 {
		t.Errorf("app_metadata %v", res.AppMetadata)
	}

	ev = baseEvent()
	ev.Client.Metadata = map[string]string{"internal": "true"}
	ev.Connection = runtime.Connection{Name: "google-oauth2", Strategy: "google-oauth2"}
	res, err = p.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.Decision.Allowed || res.Decision.Code != runtime.CodeUnauthorized || res.Decision.Reason != "This application is for employees only." {
		t.Errorf("external user on an internal app: %+v", res.Decision)
	}
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case int:
		return float64(n)
	case interface{ Float64() (float64, error) }:
		f, _ := n.Float64()
		return f
	}
	return -1
}
