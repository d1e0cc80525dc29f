package guest

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/semantics.golden from this engine's answers")

// semanticsCases pin what scripts see of the api and what the engine
// answers (commands JSON or error), byte for byte: values as the claims
// and metadata keep them (plain()'s rules: toJSON, functions and
// undefined, non-finite numbers, key order, depth), scope and deny rules,
// logs, promise and thenable outcomes, error messages, Rules' callback.
// testdata/semantics.golden holds the answers; go test -update rewrites
// it (review the diff: a change there is a change for every rule).
var semanticsCases = []struct {
	name, style, trigger, src string
}{
	{"bench", "actions", "", benchAction},
	{"values", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  const c = (k, v) => api.idToken.setCustomClaim(k, v);
  c('undef', undefined); c('null', null); c('nan', NaN); c('inf', -Infinity); c('negzero', -0);
  c('big', 1e21); c('frac', 1.5); c('int', 9007199254740993); c('small', 1e-7); c('neg', -42);
  c('t', true); c('f', false); c('str', 'a"b\\c\n\t\u0001\u2028é😀'); c('lone', '\ud800x');
  c('fn', function () {}); c('sym', Symbol('s'));
  c('obj', { a: 1, f() {}, u: undefined, n: null, nested: { x: [1, undefined, function () {}, NaN] } });
  c('holes', [1, , 3]); c('date', new Date(0)); c('tojson', { toJSON() { return { inner: { toJSON() { return 'deep'; } } }; } });
  c('boxed', [new String('ab'), new Number(3), new Boolean(false)]);
  c('map', new Map([[1, 2]])); c('set', new Set([1]));
  class K { constructor() { this.own = 1; } get proto() { return 2; } }
  c('class', new K());
  const g = {}; Object.defineProperty(g, 'got', { get() { return 'g'; }, enumerable: true }); Object.defineProperty(g, 'hidden', { value: 1 });
  c('getter', g);
  c('order', { b: 1, 2: 2, a: 3, 1: 4, '01': 5, 4294967295: 6, 4294967294: 7 });
  c('proto_key', JSON.parse('{"__proto__": {"x": 1}, "y": 2}'));
  c('proxy_array', new Proxy([1, 2], {})); c('proxy_obj', new Proxy({ p: 1 }, {}));
  c('typed', new Uint8Array([1, 2])); c('args', (function () { return arguments; })(1, 2));
  c('regexp', /x/g); c('err', new Error('e'));
  let d = []; for (let i = 0; i < 64; i++) d = [d]; c('deep64', d);
  c('2', 'two'); c('10', 'ten'); c('b', 'bee'); c('1', 'one'); c('b', 'bee again');
  c('__proto__', 'ignored');
  api.accessToken.setCustomClaim('at', { a: [1] });
  api.user.setAppMetadata('m', { z: 1, a: 2 }); api.user.setAppMetadata('m', 'replaced'); api.user.setAppMetadata('3', 3);
  api.user.setUserMetadata('u', [null]);
};`},
	{"errors", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  const r = [];
  const t = (f) => { try { f(); r.push('ok'); } catch (e) { r.push(e.name + ': ' + e.message); } };
  t(() => api.idToken.setCustomClaim('', 1));
  t(() => api.idToken.setCustomClaim(1, 1));
  t(() => api.idToken.setCustomClaim(undefined, 1));
  t(() => api.accessToken.setCustomClaim(new String('x'), 1));
  t(() => api.user.setAppMetadata('', 1));
  t(() => api.user.setUserMetadata(null, 1));
  const circ = {}; circ.self = circ;
  t(() => api.idToken.setCustomClaim('circ', circ));
  let d = []; for (let i = 0; i < 65; i++) d = [d];
  t(() => api.idToken.setCustomClaim('deep65', d));
  t(() => api.idToken.setCustomClaim('throws', { get x() { throw new RangeError('getter'); } }));
  t(() => api.idToken.setCustomClaim('tojson_throws', { toJSON() { throw 'str'; } }));
  t(() => api.redirect.sendUserTo('https://x'));
  t(() => api.multifactor.enable('any'));
  t(() => { api.idToken.setCustomClaim = null; });
  t(() => { api.extra = 1; });
  const { setCustomClaim } = api.idToken;
  t(() => setCustomClaim('detached', 1));
  r.push(Object.isFrozen(api), Object.isFrozen(api.accessToken), typeof api.cache.get, typeof api.idToken.setCustomClaim);
  api.idToken.setCustomClaim('r', r);
};`},
	{"scopes", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  api.accessToken.addScope('a'); api.accessToken.addScope('b'); api.accessToken.addScope('a');
  api.accessToken.removeScope('a'); api.accessToken.removeScope('c'); api.accessToken.addScope(7);
  api.accessToken.removeScope('c'); api.accessToken.addScope('c'); api.accessToken.removeScope(undefined);
};`},
	{"scope-only", "actions", "", `exports.onExecutePostLogin = async (event, api) => { api.accessToken.removeScope('x'); };`},
	{"deny", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('before', 1);
  api.access.deny({ toString() { return 'obj reason'; } });
  api.access.deny('second');
  api.idToken.setCustomClaim('after', 2);
};`},
	{"deny-undefined", "actions", "", `exports.onExecutePostLogin = (event, api) => api.access.deny();`},
	{"m2m", "actions", "credentials-exchange", `exports.onExecuteCredentialsExchange = async (event, api) => {
  api.accessToken.setCustomClaim('c', event.client.client_id);
  api.access.deny(0, 'zero code'); api.access.deny('x', 'ignored');
  const r = []; for (const k of ['idToken', 'user', 'redirect']) r.push(k in api); api.accessToken.setCustomClaim('keys', r);
};`},
	{"m2m-code", "actions", "credentials-exchange", `exports.onExecuteCredentialsExchange = async (event, api) => { api.access.deny('invalid_scope'); };`},
	{"m2m-no-handler", "actions", "credentials-exchange", `exports.onExecutePostLogin = async (event, api) => { api.access.deny('x'); };`},
	{"no-login-handler", "actions", "", `exports.onExecuteCredentialsExchange = async (event, api) => { api.access.deny('x'); };`},
	{"logs", "actions", "", `console.log('at load: dropped');
exports.onExecutePostLogin = async (event, api) => {
  console.log('a', 1, { b: [2] }, undefined, null); console.info('i'); console.warn('w'); console.error(new Error('e')); console.debug('x'.repeat(5000));
  const c = {}; c.c = c; console.log(c);
  for (let i = 0; i < 120; i++) console.log('line', i);
};`},
	{"throw-sync", "actions", "", `exports.onExecutePostLogin = (event, api) => { api.idToken.setCustomClaim('x', 1); throw new TypeError('sync boom'); };`},
	{"throw-string", "actions", "", `exports.onExecutePostLogin = (event, api) => { throw 'just a string'; };`},
	{"throw-object", "actions", "", `exports.onExecutePostLogin = (event, api) => { throw { code: 1 }; };`},
	{"reject-error", "actions", "", `exports.onExecutePostLogin = async (event, api) => { await null; throw new Error('async boom'); };`},
	{"reject-undefined", "actions", "", `exports.onExecutePostLogin = (event, api) => Promise.reject();`},
	{"reject-string", "actions", "", `exports.onExecutePostLogin = async () => { throw 'rejected string'; };`},
	{"reject-unauthorized", "actions", "", `exports.onExecutePostLogin = async () => { throw new UnauthorizedError('nope'); };`},
	{"pending", "actions", "", `exports.onExecutePostLogin = async () => { await new Promise(() => {}); };`},
	{"thenable-ok", "actions", "", `exports.onExecutePostLogin = (event, api) => ({ then(res) { api.idToken.setCustomClaim('t', 1); res(); } });`},
	{"thenable-reject", "actions", "", `exports.onExecutePostLogin = () => ({ then(res, rej) { rej(new Error('thenable no')); } });`},
	{"thenable-reject-undefined", "actions", "", `exports.onExecutePostLogin = () => ({ then(res, rej) { rej(); } });`},
	{"thenable-pending", "actions", "", `exports.onExecutePostLogin = () => ({ then() {} });`},
	{"thenable-throws", "actions", "", `exports.onExecutePostLogin = () => ({ then() { throw new Error('then threw'); } });`},
	{"returns-value", "actions", "", `exports.onExecutePostLogin = (event, api) => { api.user.setUserMetadata('k', 'v'); return 42; };`},
	{"promise-subclass", "actions", "", `class P extends Promise {}
exports.onExecutePostLogin = (event, api) => P.resolve().then(() => api.idToken.setCustomClaim('p', 1));`},
	{"fake-promise", "actions", "", `exports.onExecutePostLogin = () => Object.create(Promise.prototype);`},
	{"later-jobs", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  Promise.resolve().then(() => api.idToken.setCustomClaim('job', 1));
  await Promise.resolve(); await Promise.resolve();
  api.idToken.setCustomClaim('after_await', event.user.email);
};`},
	{"stored-api", "actions", "", `let kept;
exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('same', kept === undefined ? 'first' : kept === api);
  kept = api;
};`},
	{"cache", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  const s = api.cache.set('k', 'v', { ttl: 1000 });
  const g = api.cache.get('k');
  const d = api.cache.delete('k');
  // (the answers' key order is Go's map order: not compared)
  api.idToken.setCustomClaim('cache', [s, g.value, g.expires_at, d, api.cache.get('k')]);
};`},
	{"huge", "actions", "", `exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('big', 'x'.repeat(2 << 20)); };`},
	{"huge-many", "actions", "", `exports.onExecutePostLogin = async (event, api) => { for (let i = 0; i < 3000; i++) api.user.setAppMetadata('k' + i, 'x'.repeat(400)); };`},
	{"rule-basic", "rules", "", `function (user, context, callback) {
  context.idToken['https://example.com/email'] = user.email;
  context.accessToken['https://example.com/n'] = { f() {}, u: undefined, v: [1] };
  context.accessToken.scope = 'openid extra  ' ;
  auth0.users.updateAppMetadata(user.user_id, { plan: 'x', u: undefined });
  auth0.users.updateUserMetadata(user.user_id, { a: 1 });
  console.log('rule log', configuration.region);
  callback(null, user, context);
}`},
	{"rule-scope-array", "rules", "", `function (user, context, callback) {
  context.accessToken.scope = ['openid', 'new'];
  callback(null, user, context);
  callback(new Error('second call ignored'));
}`},
	{"rule-new-context", "rules", "", `function (user, context, callback) {
  callback(null, user, { idToken: { a: 1 }, accessToken: { b: 2 } });
}`},
	{"rule-unauthorized", "rules", "", `function (user, context, callback) { callback(new UnauthorizedError('blocked')); }`},
	{"rule-error", "rules", "", `function (user, context, callback) { callback(new Error('rule failed')); }`},
	{"rule-no-callback", "rules", "", `function (user, context, callback) { }`},
	{"rule-mfa", "rules", "", `function (user, context, callback) { context.multifactor = { provider: 'any' }; callback(null, user, context); }`},
	{"rule-redirect", "rules", "", `function (user, context, callback) { context.redirect = { url: 'x' }; callback(null, user, context); }`},
	{"rule-bad-metadata", "rules", "", `function (user, context, callback) { auth0.users.updateAppMetadata(user.user_id, [1]); callback(null, user, context); }`},
	{"rule-empty-patch", "rules", "", `function (user, context, callback) { auth0.users.updateUserMetadata(user.user_id, {}); callback(null, user, context); }`},
	{"action-auth0-users", "actions", "", `exports.onExecutePostLogin = async () => { auth0.users.updateAppMetadata('x', { a: 1 }); };`},
	{"stale-thenable", "actions", "", `let kept;
exports.onExecutePostLogin = () => {
  if (kept) kept();
  return { then(res) { kept = res; } };
};`},
	{"reentrant", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('outer', { a: { toJSON() { api.idToken.setCustomClaim('inner', { b: [1, { c: 2 }] }); return 'x'; } }, d: 3 });
};`},
	{"many-keys", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  for (let i = 0; i < 20; i++) api.user.setAppMetadata('k' + i, i);
  api.user.setAppMetadata('k5', 'five'); api.user.setAppMetadata('7', 'seven'); api.user.setAppMetadata('k19', null);
  api.accessToken.addScope(Symbol('s')); api.access.deny(Symbol());
};`},
	{"lazy-values", "actions", "", `exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('query', event.request.query);
  api.idToken.setCustomClaim('event', event);
  api.accessToken.setCustomClaim('user', event.user);
};`},
	{"exports-getter-throws", "actions", "", `let n = 0;
Object.defineProperty(exports, 'onExecutePostLogin', { enumerable: true, get() { if (n++ > 0) throw new Error('getter threw'); return async () => {}; } });`},
	{"rule-async-callback", "rules", "", `function (user, context, callback) { Promise.resolve().then(() => callback(null, user, context)); }`},
}

// TestSemantics answers every case twice on one engine (the second call
// must not see the first's state) and compares with the golden file.
func TestSemantics(t *testing.T) {
	rules := map[string]RuleDef{}
	for _, c := range semanticsCases {
		rules[c.name] = RuleDef{Name: c.name + ".js", Source: c.src, Style: c.style,
			Configuration: map[string]string{"region": "eu"}, Secrets: map[string]string{"KEY": "s3"}}
	}
	e := newTestEngine(t, rules)
	var got strings.Builder
	for _, c := range semanticsCases {
		trigger := c.trigger
		if trigger == "" {
			trigger = "post-login"
		}
		ev := actionEvent
		if c.style == "rules" {
			ev = ruleEvent
		}
		in := []byte(`{"rule":"` + c.name + `","trigger":"` + trigger + `","event":` + ev + `,"max_output":1048576}`)
		for i := range 2 {
			out, err := e.Call(in)
			ans := string(out)
			if err != nil {
				ans = "error: " + err.Error()
			}
			if len(ans) > 2000 {
				sum := sha256.Sum256([]byte(ans))
				ans = ans[:1000] + "…(" + itoa(len(ans)) + " bytes, sha256 " + hex.EncodeToString(sum[:8]) + ")"
			}
			got.WriteString(c.name + "#" + itoa(i+1) + ": " + ans + "\n")
		}
	}
	path := filepath.Join("testdata", "semantics.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, w := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("line %d\n got: %s\nwant: %s", i+1, gl, wl)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
