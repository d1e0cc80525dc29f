package js

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestLoadErrors: what `claimsmith check` shows for a JavaScript rule that
// cannot run: unsupported Auth0 APIs seen statically, syntax errors, files
// that are neither a Rule nor an Action, missing secrets.
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{Logger: testLogger(t), LookupEnv: func(string) (string, bool) { return "", false }})
	for _, tc := range []struct {
		name, src string
		spec      func(*runtime.ModuleSpec)
		target    error
		want      string
	}{
		{"redirect", `exports.onExecutePostLogin = async (event, api) => { api.redirect.sendUserTo('https://x'); };`, nil,
			ErrUnsupportedAPI, "line 1: api.redirect is not supported: needs Auth0's login pages"},
		{"multifactor", "exports.onExecutePostLogin = async (event, api) => {\n  api.multifactor.enable('any');\n};", nil,
			ErrUnsupportedAPI, "line 2: api.multifactor is not supported"},
		{"context multifactor", "function (user, context, callback) {\n  context.multifactor = { provider: 'any' };\n  callback(null, user, context);\n}", nil,
			ErrUnsupportedAPI, "line 2: context.multifactor is not supported"},
		{"require request", "function (user, context, callback) {\n  const request = require('request');\n  callback(null, user, context);\n}", nil,
			ErrUnsupportedAPI, "require (network module) is not supported: rules get no network"},
		{"require other", "function (user, context, callback) {\n  const _ = require('lodash');\n  callback(null, user, context);\n}", nil,
			ErrUnsupportedAPI, "bundle pure npm modules into the file with esbuild"},
		{"fetch", `exports.onExecutePostLogin = async (event, api) => { await fetch('https://x'); };`, nil, ErrUnsupportedAPI, "fetch is not supported"},
		{"timer", `exports.onExecutePostLogin = async (event, api) => { setTimeout(() => {}, 10); };`, nil, ErrUnsupportedAPI, "timers is not supported"},
		{"syntax", `exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('x', ; };`, nil, runtime.ErrInvalid, "SyntaxError"},
		{"not a rule", `console.log('hello')`, nil, runtime.ErrInvalid, "neither an Auth0 Rule"},
		{"missing secret", `exports.onExecutePostLogin = async (event, api) => {};`, func(s *runtime.ModuleSpec) { s.Secrets = []string{"API_KEY"} },
			runtime.ErrInvalid, "secret API_KEY: the environment variable is not set"},
		{"network hosts", `exports.onExecutePostLogin = async (event, api) => {};`, func(s *runtime.ModuleSpec) { s.AllowedHosts = []string{"api.example.com"} },
			runtime.ErrInvalid, "JavaScript rules get no network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := runtime.ModuleSpec{Name: "broken", Path: writeFile(t, "rule.js", tc.src)}
			if tc.spec != nil {
				tc.spec(&spec)
			}
			r, err := e.LoadModule(context.Background(), spec)
			if err == nil {
				_ = r.(*Rule).Cleanup()
				t.Fatal("LoadModule succeeded")
			}
			var le *LoadError
			if !errors.As(err, &le) || le.Rule != "broken" || le.Path != spec.Path {
				t.Fatalf("error %v (%T) is not a *LoadError naming rule and path", err, err)
			}
			if !errors.Is(err, tc.target) || !errors.Is(err, runtime.ErrInvalid) {
				t.Errorf("error %v does not match %v and runtime.ErrInvalid", err, tc.target)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			t.Log(err)
		})
	}
	_, err := e.LoadModule(context.Background(), runtime.ModuleSpec{Name: "missing", Path: filepath.Join(t.TempDir(), "nope.js")})
	if !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("missing file: %v, want ErrNotFound", err)
	}
}

// TestUnsupportedAtCallTime: uses the static check cannot see fail when
// called, naming the API and the way out.
func TestUnsupportedAtCallTime(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{Logger: testLogger(t)})
	for _, tc := range []struct{ name, src, want string }{
		{"computed redirect", `exports.onExecutePostLogin = async (event, api) => { const k = 'redi' + 'rect'; api[k].sendUserTo('https://x'); };`,
			"api.redirect.sendUserTo is not supported by claimsmith"},
		{"computed require", `exports.onExecutePostLogin = async (event, api) => { const r = globalThis['req' + 'uire']; r('axios'); };`,
			"require('axios') is not supported by claimsmith: rules get no network"},
		{"computed timer", `exports.onExecutePostLogin = async (event, api) => { globalThis['set' + 'Timeout'](() => {}, 1); };`,
			"setTimeout is not supported by claimsmith"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := loadJS(t, e, runtime.ModuleSpec{Name: "dyn", Path: writeFile(t, "rule.js", tc.src), Timeout: 10 * time.Second})
			_, err := run(t, r, baseEvent())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestSecretsAndConfiguration: secrets come from the named environment
// variables (event.secrets; Rules' configuration), settings from config.
func TestSecretsAndConfiguration(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PARTNER_KEY": "s3cret"}
	e := newTestEngine(t, Options{Logger: testLogger(t), LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	action := loadJS(t, e, runtime.ModuleSpec{Name: "a", Secrets: []string{"PARTNER_KEY"}, Config: map[string]string{"region": "eu"},
		Path: writeFile(t, "a.js", `exports.onExecutePostLogin = async (event, api) => {
  api.accessToken.setCustomClaim('https://example.com/key', event.secrets.PARTNER_KEY);
  api.accessToken.setCustomClaim('https://example.com/region', event.configuration.region);
};`)})
	rule := loadJS(t, e, runtime.ModuleSpec{Name: "r", Secrets: []string{"PARTNER_KEY"}, Config: map[string]string{"region": "eu"},
		Path: writeFile(t, "r.js", `function (user, context, callback) {
  context.accessToken['https://example.com/key'] = configuration.PARTNER_KEY;
  context.accessToken['https://example.com/region'] = configuration.region;
  callback(null, user, context);
}`)})
	for _, r := range []*Rule{action, rule} {
		out, err := run(t, r, baseEvent())
		if err != nil {
			t.Fatal(err)
		}
		k, _ := out.AccessToken.Claims.Get("https://example.com/key")
		reg, _ := out.AccessToken.Claims.Get("https://example.com/region")
		if k != "s3cret" || reg != "eu" {
			t.Errorf("%s: claims %+v", r.Name(), out.AccessToken.Claims)
		}
	}
}

// TestCache: api.cache keeps values across calls and instances, per rule
// and trigger, within Auth0's limits.
func TestCache(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{Logger: testLogger(t), PoolSize: 2})
	r := loadJS(t, e, runtime.ModuleSpec{Name: "c", Path: writeFile(t, "c.js", `exports.onExecutePostLogin = async (event, api) => {
  const hit = api.cache.get('k');
  api.idToken.setCustomClaim('https://example.com/hit', hit ? hit.value : null);
  const res = api.cache.set('k', 'v-' + event.user.user_id, { ttl: 60000 });
  api.idToken.setCustomClaim('https://example.com/set', res.type);
  const big = api.cache.set('big', 'x'.repeat(5000));
  api.idToken.setCustomClaim('https://example.com/big', big.type + ':' + big.code);
};`)})
	want := []any{nil, "v-auth0|alice", "v-auth0|alice"}
	for i, w := range want {
		out, err := run(t, r, baseEvent())
		if err != nil {
			t.Fatal(err)
		}
		hit, _ := out.IDToken.Claims.Get("https://example.com/hit")
		set, _ := out.IDToken.Claims.Get("https://example.com/set")
		big, _ := out.IDToken.Claims.Get("https://example.com/big")
		if hit != w || set != "success" || big != "error:value_too_large" {
			t.Errorf("call %d: hit=%v set=%v big=%v", i, hit, set, big)
		}
	}
}

// TestRulesInARow: Rules see each other's persisted metadata, as on Auth0,
// through the pipeline.
func TestRulesInARow(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{Logger: testLogger(t)})
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("first.js", `function (user, context, callback) {
  user.app_metadata.plan = 'platinum';
  auth0.users.updateAppMetadata(user.user_id, user.app_metadata).then(function () { callback(null, user, context); });
}`)
	write("second.js", `exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/plan', event.user.app_metadata.plan);
};`)
	reg := runtime.NewRegistry()
	p, err := runtime.NewPipeline(context.Background(), runtime.PipelineConfig{
		Namespace: "https://example.com/",
		Timeout:   "60s",
		Rules:     []runtime.RuleEntry{{JS: "first.js", Timeout: "20s"}, {JS: "second.js", Timeout: "20s"}},
	}, runtime.Deps{Registry: reg, Scripts: e, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res, err := p.Run(context.Background(), baseEvent())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.IDTokenClaims.Get("https://example.com/plan"); v != "platinum" {
		t.Errorf("second rule saw plan %v; result %+v", v, res)
	}
	if res.AppMetadata["plan"] != "platinum" {
		t.Errorf("app_metadata patch %v", res.AppMetadata)
	}
}
