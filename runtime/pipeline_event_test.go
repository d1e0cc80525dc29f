package runtime_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestDecodeEvent(t *testing.T) {
	ev, err := runtime.DecodeEvent([]byte(`{
		"user": {"user_id": "auth0|1", "email_verified": true, "groups": ["Staff"], "app_metadata": {"plan": "gold", "n": 12345678901234567890}, "extra_idp_field": 1},
		"client": {"client_id": "app", "metadata": {"required_roles": "admin"}},
		"connection": {"name": "ad"}, "request": {"ip": "192.0.2.1", "geoip": {"country_code": "NL"}},
		"transaction": {"requested_scopes": ["openid"]}, "future_top_level": {}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Trigger != runtime.TriggerPostLogin || ev.User.UserID != "auth0|1" || !ev.User.EmailVerified ||
		ev.User.AppMetadata["plan"] != "gold" || ev.User.AppMetadata["n"] != json.Number("12345678901234567890") || ev.Client.Metadata["required_roles"] != "admin" || ev.Request.GeoIP.CountryCode != "NL" {
		t.Fatalf("%+v", ev)
	}
	cases := map[string]string{
		``:         "empty or truncated",
		`{"user":`: "empty or truncated",
		`[1]`:      "(top level): expected an object",
		`{"user":{"user_id":"a"},"client":{"client_id":"c"}} {}`:                       "unexpected data after the JSON value",
		`{"user":{"user_id":"a"},"client":{"client_id":"c"}} ]`:                        "unexpected data after the JSON value",
		`{"user":{},"client":{"client_id":"c"}}`:                                       "user.user_id: required",
		`{"user":{"user_id":"a"}}`:                                                     "client.client_id: required",
		`null`:                                                                         "client.client_id: required",
		`{"user":{"user_id":"a","email_verified":"yes"}}`:                              "user.email_verified: expected true or false, got string",
		`{"user":{"user_id":"a"},"client":{"metadata":{"n":1}}}`:                       "client.metadata: expected a string, got number",
		`{"user":{"user_id":"a"},"client":{"client_id":"c"},"trigger":"pre-register"}`: `trigger: "pre-register" is not one of post-login, credentials-exchange`,
		`{"user":{"user_id":"a"},}`:                                                    "invalid JSON at byte",
	}
	for in, want := range cases {
		_, err := runtime.DecodeEvent([]byte(in))
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("DecodeEvent(%q) = %v, want %q", in, err, want)
		}
	}
	big := make([]byte, runtime.MaxEventBytes+1)
	if _, err := runtime.DecodeEvent(big); !errors.Is(err, runtime.ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}

// TestDecodeEventRequestRoute: an endpoint's trigger fills an empty one,
// a different one in the body is refused, a credentials exchange logs in as
// its client, and "mint" is read beside the event.
func TestDecodeEventRequestRoute(t *testing.T) {
	ce := runtime.TriggerCredentialsExchange
	req, err := runtime.DecodeEventRequest([]byte(`{"client":{"client_id":"batch"},"mint":true}`), ce)
	if err != nil {
		t.Fatal(err)
	}
	if req.Trigger != ce || req.User.UserID != "batch" || !req.Mint {
		t.Fatalf("%+v", req)
	}
	if _, err := runtime.DecodeEventRequest([]byte(`{"client":{"client_id":"c"}}`), runtime.TriggerPostLogin); err == nil ||
		!strings.Contains(err.Error(), "user.user_id: required") {
		t.Fatalf("post-login without a user: %v", err)
	}
	_, err = runtime.DecodeEventRequest([]byte(`{"trigger":"post-login","user":{"user_id":"u"},"client":{"client_id":"c"}}`), ce)
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "does not match the endpoint's trigger") {
		t.Fatalf("mismatched trigger: %v", err)
	}
	// Without an endpoint the body's own trigger counts.
	ev, err := runtime.DecodeEvent([]byte(`{"trigger":"credentials-exchange","client":{"client_id":"batch"}}`))
	if err != nil || ev.Trigger != ce || ev.User.UserID != "batch" {
		t.Fatalf("%+v %v", ev, err)
	}
}

// TestDecodeEventDropsServerFields: a caller cannot inject event.secrets
// or event.authorization (issue 14): both are the server's; they are
// dropped, not refused, so a forwarded Auth0 event still decodes.
func TestDecodeEventDropsServerFields(t *testing.T) {
	body := `{"user":{"user_id":"u"},"client":{"client_id":"c"},"secrets":{"API_KEY":"forged"},"authorization":{"groups":["g"],"roles":["admin"],"permissions":["p"]}}`
	for _, route := range []runtime.Trigger{"", runtime.TriggerPostLogin} {
		req, err := runtime.DecodeEventRequest([]byte(body), route)
		if err != nil {
			t.Fatal(err)
		}
		if req.Secrets != nil || req.Authorization != nil {
			t.Fatalf("route %q: secrets %v, authorization %+v reached the event", route, req.Secrets, req.Authorization)
		}
	}
}

// FuzzDecodeEvent feeds arbitrary bytes to the one native event decoder,
// without and with an endpoint's trigger: it must never panic, must fail
// with ErrInvalid or ErrTooLarge, and an accepted event carries a user, a
// client and a known trigger (the endpoint's when there is one).
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []string{
		`{"user":{"user_id":"u"},"client":{"client_id":"c"}}`,
		`{"trigger":"credentials-exchange","user":{"user_id":"client"},"client":{"client_id":"c"}}`,
		`{"trigger":"credentials-exchange","client":{"client_id":"c"},"mint":true}`,
		`{"user":{"user_id":"u","groups":["a","b"],"app_metadata":{"a":{"b":[1,2,null]}}},"client":{"client_id":"c"},"request":{"geoip":{"latitude":1.5}}}`,
		`{"user":{"user_id":"u"},"client":{"client_id":"c"},"authorization":{"groups":[],"roles":["r"],"permissions":null}}`,
		`{"user":{"user_id":"u"},"client":{"client_id":"c"},"secrets":{"K":"v"}}`,
		`{"user":{"user_id":"u"}} x`, `null`, `{"user":{"user_id":1}}`, "\xff", `{"mint":"yes"}`,
	} {
		f.Add([]byte(seed))
	}
	// The sample events of `claimsmith test` and the native trigger's
	// recorded requests: one decoder reads both.
	events, _ := filepath.Glob(filepath.Join("..", "samples", "events", "*.json"))
	native, _ := filepath.Glob(filepath.Join("..", "samples", "payloads", "native", "*.request.json"))
	if files := append(events, native...); len(files) > 0 {
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, route := range []runtime.Trigger{"", runtime.TriggerPostLogin, runtime.TriggerCredentialsExchange} {
			req, err := runtime.DecodeEventRequest(data, route)
			if err != nil {
				if !errors.Is(err, runtime.ErrInvalid) && !errors.Is(err, runtime.ErrTooLarge) {
					t.Fatalf("error %T %v", err, err)
				}
				continue
			}
			if req.Secrets != nil || req.Authorization != nil {
				t.Fatalf("route %q: a caller's secrets or authorization reached the event: %+v", route, req)
			}
			known := req.Trigger == runtime.TriggerPostLogin || req.Trigger == runtime.TriggerCredentialsExchange
			if req.User.UserID == "" || req.Client.ClientID == "" || !known || (route != "" && req.Trigger != route) {
				t.Fatalf("route %q accepted %+v", route, req)
			}
			if route == "" {
				// The dry run's decoder is the same one.
				ev, err := runtime.DecodeEvent(data)
				if err != nil || ev.Trigger != req.Trigger || ev.User.UserID != req.User.UserID {
					t.Fatalf("DecodeEvent disagrees: %+v %v", ev, err)
				}
			}
		}
	})
}
