package runtime_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestDecodeEvent(t *testing.T) {
	ev, err := runtime.DecodeEvent([]byte(`{
		"user": {"user_id": "auth0|1", "email_verified": true, "groups": ["Staff"], "app_metadata": {"plan": "gold"}, "extra_idp_field": 1},
		"client": {"client_id": "app", "metadata": {"required_roles": "admin"}},
		"connection": {"name": "ad"}, "request": {"ip": "192.0.2.1", "geoip": {"country_code": "NL"}},
		"transaction": {"requested_scopes": ["openid"]}, "future_top_level": {}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Trigger != runtime.TriggerPostLogin || ev.User.UserID != "auth0|1" || !ev.User.EmailVerified ||
		ev.User.AppMetadata["plan"] != "gold" || ev.Client.Metadata["required_roles"] != "admin" || ev.Request.GeoIP.CountryCode != "NL" {
		t.Fatalf("%+v", ev)
	}
	cases := map[string]string{
		``:                            "empty or truncated",
		`{"user":`:                    "empty or truncated",
		`[1]`:                         "(top level): expected an object",
		`{"user":{"user_id":"a"}} {}`: "unexpected data after the JSON object",
		`{"user":{}}`:                 "user.user_id: required",
		`{"user":{"user_id":"a","email_verified":"yes"}}`:        "user.email_verified: expected true or false, got string",
		`{"user":{"user_id":"a"},"client":{"metadata":{"n":1}}}`: "client.metadata: expected a string, got number",
		`{"user":{"user_id":"a"},"trigger":"pre-register"}`:      `trigger: "pre-register" is not one of post-login, credentials-exchange`,
		`{"user":{"user_id":"a"},}`:                              "invalid JSON at byte",
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

// FuzzDecodeEvent feeds arbitrary bytes to the event decoder: it must never
// panic, must fail with ErrInvalid or ErrTooLarge, and an accepted event
// must carry a user id and a known trigger.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []string{
		`{"user":{"user_id":"u"}}`,
		`{"trigger":"credentials-exchange","user":{"user_id":"client"},"client":{"client_id":"c"}}`,
		`{"user":{"user_id":"u","groups":["a","b"],"app_metadata":{"a":{"b":[1,2,null]}}},"request":{"geoip":{"latitude":1.5}}}`,
		`{"user":{"user_id":"u"},"authorization":{"groups":[],"roles":["r"],"permissions":null}}`,
		`{"user":{"user_id":"u"}} x`, `null`, `{"user":{"user_id":1}}`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := runtime.DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, runtime.ErrInvalid) && !errors.Is(err, runtime.ErrTooLarge) {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if ev.User.UserID == "" || (ev.Trigger != runtime.TriggerPostLogin && ev.Trigger != runtime.TriggerCredentialsExchange) {
			t.Fatalf("accepted %+v", ev)
		}
	})
}
