package guest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// TestLazyEvent: an Action's event objects behave as plain objects for
// what scripts do with them, though they stay JSON until read.
func TestLazyEvent(t *testing.T) {
	src := `exports.onExecutePostLogin = async (event, api) => {
  const c = (k, v) => api.idToken.setCustomClaim('https://example.com/' + k, v);
  c('keys', Object.keys(event));
  c('user_keys', Object.keys(event.user).slice(0, 3));
  c('same', event.user === event.user && event.user.app_metadata === event.user.app_metadata);
  c('spread', { ...event.client }.metadata.tier);
  c('json', JSON.parse(JSON.stringify(event.connection)));
  event.user.app_metadata.added = 1;
  c('mutated', event.user.app_metadata.added + event.user.app_metadata.plan);
  c('in', ['request' in event, 'nope' in event, event.hasOwnProperty('user')]);
  delete event.request;
  c('deleted', [event.request === undefined, 'request' in event]);
  c('array', Array.isArray(event.authorization.roles) && event.authorization.roles.length);
  const seen = [];
  for (const k in event.client.metadata) seen.push(k);
  c('forin', seen);
  c('entries', Object.entries(event.stats));
  c('secret', event.secrets.KEY + '/' + event.configuration.region);
  let frozen;
  try { Object.freeze(event.user); frozen = 'froze'; } catch (e) { frozen = e.name; }
  c('freeze', frozen);
  c('freeze_copy', Object.isFrozen(Object.freeze({ ...event.user })));
  c('proto', Object.getPrototypeOf(event.user) === Object.prototype && typeof event.user);
};`
	e := newTestEngine(t, map[string]RuleDef{"lazy": {Name: "lazy.js", Source: src, Style: "actions",
		Secrets: map[string]string{"KEY": "s3"}, Configuration: map[string]string{"region": "eu"}}})
	out, err := e.Call(callInput("lazy", actionEvent))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		IDToken struct {
			Claims map[string]any `json:"claims"`
		} `json:"id_token"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"keys":        []any{"trigger", "user", "client", "connection", "request", "transaction", "authorization", "stats", "secrets", "configuration"},
		"user_keys":   []any{"user_id", "email", "email_verified"},
		"same":        true,
		"spread":      "internal",
		"json":        map[string]any{"name": "corp-ad", "strategy": "ad"},
		"mutated":     "1gold",
		"in":          []any{true, false, true},
		"deleted":     []any{true, false},
		"array":       2.0,
		"forin":       []any{"tier"},
		"entries":     []any{[]any{"logins_count", 7.0}},
		"secret":      "s3/eu",
		"freeze":      "TypeError",
		"freeze_copy": true,
		"proto":       "object",
	}
	for k, w := range want {
		if g := got.IDToken.Claims["https://example.com/"+k]; !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
}

// FuzzParseJSON checks the engine's JSON reader against goja's own
// JSON.parse: the same values for every valid document (eagerly, and
// through the lazy objects of an Action's event), an error for every
// invalid one.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{actionEvent, ruleEvent, `{"a":[1,2,{"b":null}],"c":"\u00e9\n","d":-1.5e3}`, `[]`, `"x"`, `{"__proto__":{"x":1},"a":1,"a":2}`,
		`{"a":1e400}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":01}`, `{"a":1,}`, `[1 2]`, `{"":""}`, `{"1":1,"b":2}`} {
		f.Add([]byte(s))
	}
	// One engine for all inputs: a runtime and its prelude take longer to
	// start than a document to compare.
	e := newTestEngine(f, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := e.parser.parseJSON(b)
		valid := json.Valid(b)
		if !valid {
			if err == nil {
				t.Fatalf("accepted invalid JSON %q", b)
			}
			return
		}
		if err != nil {
			if errors.Is(err, errJSON) && strings.Contains(err.Error(), "nested too deeply") {
				return
			}
			t.Fatalf("refused valid JSON %q: %v", b, err)
		}
		parse, _ := goja.AssertFunction(e.rt.Get("JSON").ToObject(e.rt).Get("parse"))
		stringify, _ := goja.AssertFunction(e.rt.Get("JSON").ToObject(e.rt).Get("stringify"))
		want, err := parse(goja.Undefined(), e.rt.ToValue(string(b)))
		if err != nil {
			// goja refuses numbers out of float64's range, which JSON.parse
			// reads as ±Infinity (as this reader does): nothing to compare.
			return
		}
		text := func(v goja.Value) string {
			s, err := stringify(goja.Undefined(), v)
			if err != nil {
				t.Fatal(err)
			}
			return s.String()
		}
		if g, w := text(got), text(want); g != w {
			t.Fatalf("%q: got %s, JSON.parse %s", b, g, w)
		}
		if o, ok := want.(*goja.Object); ok && len(b) > 0 && strings.TrimSpace(string(b))[0] == '{' && o.ClassName() == "Object" {
			start := strings.IndexByte(string(b), '{')
			lazy, err := e.lazyValue(b, start, len(strings.TrimRight(string(b), " \t\r\n")))
			if err != nil {
				t.Fatalf("lazy %q: %v", b, err)
			}
			var g, w any
			_ = json.Unmarshal([]byte(text(lazy)), &g)
			_ = json.Unmarshal([]byte(text(want)), &w)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("%q lazily: got %s, JSON.parse %s", b, text(lazy), text(want))
			}
		}
	})
}
