package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// decodeReference is DecodeEventRequest with encoding/json only: the
// behaviour the fast path must reproduce.
func decodeReference(data []byte, route Trigger) (*EventRequest, error) {
	if len(data) > MaxEventBytes {
		return DecodeEventRequest(data, route) // the size check comes first either way
	}
	req := new(EventRequest)
	if err := DecodeJSON("event", data, req); err != nil {
		return nil, err
	}
	req.Secrets, req.Authorization = nil, nil // the server's, never a caller's
	if err := req.Event.validate(route); err != nil {
		return nil, err
	}
	return req, nil
}

// eventDecoderSeeds are the shapes the fast path must get exactly right:
// every field kind, null for each, duplicates, case-folded and escaped
// keys, invalid UTF-8, surrogates, numbers at the edges, deep nesting,
// trailing data.
var eventDecoderSeeds = []string{
	`{"user":{"user_id":"u"},"client":{"client_id":"c"}}`,
	`{"trigger":"credentials-exchange","client":{"client_id":"c"},"mint":true}`,
	`{"user":{"user_id":"u","groups":["a",null,"b"],"app_metadata":{"a":{"b":[1,2.5e3,-0,null,true,false,"x"]},"e":{},"f":[]}},"client":{"client_id":"c"},"request":{"geoip":{"latitude":1.5,"longitude":-1e2}}}`,
	`{"user":{"user_id":"u","logins_count":12,"identities":[null,{"connection":"c","is_social":true,"x":1}]},"client":{"client_id":"c","metadata":{"a":null,"b":"x"}}}`,
	`{"user":{"user_id":"u","logins_count":1.5},"client":{"client_id":"c"}}`,
	`{"user":{"user_id":"u","logins_count":99999999999999999999},"client":{"client_id":"c"}}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"},"request":{"geoip":{"latitude":1e400}}}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"},"authorization":{"groups":[],"roles":["r"],"permissions":null}}`,
	`{"user":{"user_id":"u"},"user":{"email":"e"},"client":{"client_id":"c"}}`,
	`{"user":{"user_id":"u","user_metadata":{"a":1},"user_metadata":{"b":2}},"client":{"client_id":"c"}}`,
	`{"user":{"user_id":"u","user_metadata":{"a":1,"a":{"b":2}}},"client":{"client_id":"c"}}`,
	`{"User":{"User_ID":"u"},"CLIENT":{"client_id":"c"}}`,
	`{"user":{"user_\u0069d":"u"},"client":{"client_id":"c"}}`,
	"{\"user\":{\"user_id\":\"u\"},\"client\":{\"client_id\":\"c\"},\"\u212aey\":1,\"mint\u017f\":2}",
	"{\"user\":{\"user_id\":\"u\xff\"},\"client\":{\"client_id\":\"c\"}}",
	"{\"user\":{\"user_id\":\"u\",\"x\":\"\xff\"},\"client\":{\"client_id\":\"c\"}}",
	`{"user":{"user_id":"\ud83d\ude00 \ud800 \u00e9\n\t\"\\\/"},"client":{"client_id":"c"}}`,
	`{"user":{"user_id":"u","app_metadata":{"\u00e9":"\u20ac","k\"":"v"}},"client":{"client_id":"c"}}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"}} x`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"}} `,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"},}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"},"x":[1,2,]}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"},"x":01}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"},"x":"a` + "\x01" + `"}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"},"x":"\x"}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c"},"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	`{"user":null,"client":{"client_id":"c"},"connection":null,"request":{"geoip":null,"query":{"a":"b"}},"transaction":{"requested_scopes":null,"id":"t"},"secrets":{"s":"v"}}`,
	`{"user":{"user_id":1},"client":{"client_id":"c"}}`,
	`{"user":{"user_id":"u","email_verified":"yes"},"client":{"client_id":"c"}}`,
	`{"user":{"user_id":"u"},"client":{"client_id":"c","metadata":{"a":1}}}`,
	`null`, `[]`, ``, `{`, "\xff", `{"mint":"yes"}`, `{"mint":null,"trigger":null}`,
}

// FuzzEventDecoderAgrees: whatever the fast path accepts, encoding/json
// accepts with an equal result; and the public decoder answers exactly as
// the encoding/json-only reference does, refusals and messages included.
func FuzzEventDecoderAgrees(f *testing.F) {
	for _, s := range eventDecoderSeeds {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("..", "samples", "events", "*.json"))
	native, _ := filepath.Glob(filepath.Join("..", "samples", "payloads", "*", "*.json"))
	for _, p := range append(files, native...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast EventRequest
		if decodeEventFast(data, &fast) {
			var ref EventRequest
			if err := DecodeJSON("event", data, &ref); err != nil {
				t.Fatalf("fast path accepted what encoding/json refuses (%v):\n%q", err, data)
			}
			if !reflect.DeepEqual(fast, ref) {
				t.Fatalf("fast path decoded\n%#v\nencoding/json\n%#v\nfrom %q", fast, ref, data)
			}
		}
		for _, route := range []Trigger{"", TriggerPostLogin} {
			got, gerr := DecodeEventRequest(data, route)
			want, werr := decodeReference(data, route)
			if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
				t.Fatalf("route %q: error %v, reference %v", route, gerr, werr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("route %q: %#v, reference %#v", route, got, want)
			}
		}
	})
}

// TestEventDecoderFastPath: the events claimsmith is sent take the fast
// path (a fallback on them would silently cost the speed-up).
func TestEventDecoderFastPath(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "samples", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	for _, p := range append(files, filepath.Join("testdata", "auth0-action-event.json")) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var req EventRequest
		if !decodeEventFast(b, &req) {
			t.Errorf("%s: the fast path gave up", p)
		}
	}
}

// BenchmarkDecodeEvent compares the login event's decoding (fast path) with
// encoding/json on the same bytes: a whole Auth0 Action event (unknown keys
// skipped) and the benchmark's login event.
func BenchmarkDecodeEvent(b *testing.B) {
	action, err := os.ReadFile(filepath.Join("testdata", "auth0-action-event.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"action", action}, {"login", []byte(benchEventJSON)}} {
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := DecodeEventRequest(c.data, TriggerPostLogin); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := decodeReference(c.data, TriggerPostLogin); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchEventJSON is runtime/setup's benchmark login (alice at the portal).
const benchEventJSON = `{
  "trigger": "post-login",
  "user": {"user_id": "auth0|alice", "email": "alice@example.com", "email_verified": true, "name": "Alice Example",
    "user_metadata": {"theme": "light", "locale": "de-DE"},
    "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0", "user_id": "alice", "is_social": false}]},
  "client": {"client_id": "portal-client", "name": "Example Portal", "metadata": {"required_roles": "user, viewer, editor, admin, support"}},
  "connection": {"id": "con_1", "name": "Username-Password-Authentication", "strategy": "auth0"},
  "request": {"ip": "192.0.2.10", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "hostname": "login.example.com",
    "method": "GET", "query": {"scope": "openid profile email", "response_type": "code"},
    "geoip": {"country_code": "NL", "country_name": "Netherlands"}},
  "transaction": {"requested_scopes": ["openid", "profile", "email"], "audience": "https://api.example.com/", "protocol": "oidc-basic-profile"},
  "mint": true
}`
