package guest

import (
	"encoding/json"
	"testing"

	"github.com/dop251/goja"
)

// testHost serves rule definitions from a map and answers api.cache from
// one in-memory map (the real host's limits are runtime/js's concern).
type testHost struct {
	rules map[string]RuleDef
	cache map[string]string
}

func (h *testHost) Rule(id string) ([]byte, error) {
	d, ok := h.rules[id]
	if !ok {
		return nil, nil
	}
	return json.Marshal(d)
}

func (h *testHost) Cache(req []byte) ([]byte, error) {
	var r struct {
		Op, Key string
		Value   *string
	}
	if err := json.Unmarshal(req, &r); err != nil {
		return nil, err
	}
	switch r.Op {
	case "get":
		v, ok := h.cache[r.Key]
		if !ok {
			return []byte("null"), nil
		}
		return json.Marshal(map[string]any{"value": v, "expires_at": 1})
	case "set":
		h.cache[r.Key] = *r.Value
	case "delete":
		delete(h.cache, r.Key)
	}
	return []byte(`{"type":"success"}`), nil
}

// benchAction is runtime/js's benchmark Action.
const benchAction = `exports.onExecutePostLogin = async (event, api) => {
  const ns = 'https://example.com/';
  if (!event.user.email_verified) return api.access.deny('verify your e-mail');
  api.idToken.setCustomClaim(ns + 'roles', event.authorization.roles);
  api.accessToken.setCustomClaim(ns + 'tenant', event.client.metadata.tier || 'default');
  if (event.stats.logins_count > 5) api.user.setAppMetadata('regular', true);
};`

// actionEvent and ruleEvent are runtime/js's benchmark event as the host
// shapes it for an Action and for a Rule (runtime/js/event.go).
const (
	actionEvent = `{"trigger":"post-login","user":{"user_id":"auth0|alice","email":"alice@example.com","email_verified":true,"name":"Alice","created_at":"2026-01-01T00:00:00Z","logins_count":7,"last_password_reset":"2026-11-20T08:00:00Z","app_metadata":{"plan":"gold"},"user_metadata":{},"identities":[]},"client":{"client_id":"client-1","name":"Dashboard","metadata":{"tier":"internal"}},"connection":{"name":"corp-ad","strategy":"ad"},"request":{"ip":"198.51.100.23","user_agent":"test","hostname":"login.example","query":{"lang":"de","tenant":"acme"}},"transaction":{"protocol":"oidc-basic-profile","requested_scopes":["openid","profile","admin"]},"authorization":{"roles":["viewer","editor"],"groups":["staff"],"permissions":["read:docs"]},"stats":{"logins_count":7}}`
	ruleEvent   = `{"user":{"user_id":"auth0|alice","email":"alice@example.com","email_verified":true,"name":"Alice","created_at":"2026-01-01T00:00:00Z","logins_count":7,"last_password_reset":"2026-11-20T08:00:00Z","app_metadata":{"plan":"gold"},"user_metadata":{},"identities":[]},"context":{"clientID":"client-1","clientName":"Dashboard","clientMetadata":{"tier":"internal"},"connection":"corp-ad","connectionID":"","connectionStrategy":"ad","protocol":"oidc-basic-profile","request":{"ip":"198.51.100.23","userAgent":"test","hostname":"login.example","query":{"lang":"de","tenant":"acme"},"body":{},"geoip":{}},"stats":{"loginsCount":7},"authorization":{"roles":["viewer","editor"]},"idToken":{},"accessToken":{"scope":["openid","profile","admin"]}}}`
)

// callInput is what runtime/js sends (its callInput).
func callInput(rule, event string) []byte {
	return []byte(`{"rule":"` + rule + `","trigger":"post-login","event":` + event + `,"max_output":1048576}`)
}

func newTestEngine(t testing.TB, rules map[string]RuleDef) *Engine {
	t.Helper()
	e, err := New(&testHost{rules: rules, cache: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// BenchmarkCall is one pooled login through the engine, natively: the
// same code as inside the sandbox, for profiles (go test -cpuprofile).
func BenchmarkCall(b *testing.B) {
	e := newTestEngine(b, map[string]RuleDef{"bench": {Name: "bench.js", Source: benchAction, Style: "actions"}})
	in := callInput("bench", actionEvent)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Call(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCallAction(t *testing.T) {
	e := newTestEngine(t, map[string]RuleDef{"bench": {Name: "bench.js", Source: benchAction, Style: "actions"}})
	out, err := e.Call(callInput("bench", actionEvent))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id_token":{"claims":{"https://example.com/roles":["viewer","editor"]}},"access_token":{"claims":{"https://example.com/tenant":"internal"},"add_scopes":[],"remove_scopes":[]},"app_metadata":{"regular":true}}`
	if string(out) != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}
}

// BenchmarkPhases splits a login into its parts, to see where the time
// goes inside the sandbox as well (GOOS=wasip1 GOARCH=wasm go test -c, run
// under wazero: no CPU profiler there).
func BenchmarkPhases(b *testing.B) {
	e := newTestEngine(b, map[string]RuleDef{
		"bench": {Name: "bench.js", Source: benchAction, Style: "actions"},
		"empty": {Name: "empty.js", Source: `exports.onExecutePostLogin = async (event, api) => {};`, Style: "actions"},
		"sync":  {Name: "sync.js", Source: `exports.onExecutePostLogin = (event, api) => {};`, Style: "actions"},
		"rule":  {Name: "rule.js", Source: `function (user, context, callback) { callback(null, user, context); }`, Style: "rules"},
	})
	in := callInput("bench", actionEvent)
	b.Run("parse-input", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.parser.parseInput(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, name := range []string{"bench", "empty", "sync", "rule"} {
		ev := actionEvent
		if name == "rule" {
			ev = ruleEvent
		}
		in := callInput(name, ev)
		b.Run("call-"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Call(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("stringify", func(b *testing.B) {
		v, err := e.rt.RunString(`({id_token: {claims: {"https://example.com/roles": ["viewer", "editor"]}}, access_token: {claims: {"https://example.com/tenant": "internal"}, add_scopes: [], remove_scopes: []}, app_metadata: {regular: true}})`)
		if err != nil {
			b.Fatal(err)
		}
		stringify, _ := goja.AssertFunction(e.rt.Get("JSON").ToObject(e.rt).Get("stringify"))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := stringify(goja.Undefined(), v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("call-go-func", func(b *testing.B) {
		// One Go to JavaScript call and back: the floor of any call.
		noop, err := e.rt.RunString(`(function () {})`)
		if err != nil {
			b.Fatal(err)
		}
		fn, _ := goja.AssertFunction(noop)
		for b.Loop() {
			if _, err := fn(goja.Undefined()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
