package sdk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type fakeHost struct {
	config map[string]string
	groups map[string][]string
	logs   []string
}

func (h *fakeHost) Config(k string) (string, bool) { v, ok := h.config[k]; return v, ok }
func (h *fakeHost) IsMember(u, g string) (bool, error) {
	return Has(h.groups[u], g), nil
}
func (h *fakeHost) UserPolicy(u, c string) (Authorization, error) {
	return Authorization{Groups: h.groups[u], Roles: []string{}, Permissions: []string{}}, nil
}
func (h *fakeHost) Log(level, msg string) { h.logs = append(h.logs, level+": "+msg) }

const event = `{"trigger":"post-login","user":{"user_id":"u1","email":"a@b.example","name":"A",
 "app_metadata":{"plan":"gold","n":3},"user_metadata":{"theme":"dark"}},
 "client":{"client_id":"c1","name":"Portal","metadata":{"tenant":"acme"}},
 "request":{"ip":"192.0.2.1","query":{"prompt":"login"}},"new_field_from_a_newer_host":1}`

func TestHandleEncodesEveryCommand(t *testing.T) {
	host := &fakeHost{config: map[string]string{"ns": "https://x.example/"}, groups: map[string][]string{"u1": {"admins"}}}
	out, err := Handle([]byte(event), host, func(ev *Event, api *API) error {
		ns, _ := api.Host.Config("ns")
		var plan string
		if ok, err := ev.User.AppMetadataKey("plan", &plan); !ok || err != nil {
			t.Errorf("AppMetadataKey: %v %v", ok, err)
		}
		if p, ok := ev.Request.QueryParam("prompt"); !ok || p != "login" {
			t.Errorf("QueryParam = %q %v", p, ok)
		}
		admin, _ := api.Host.IsMember(ev.User.UserID, "admins")
		api.IDToken.SetCustomClaim(ns+"plan", plan)
		api.IDToken.SetCustomClaim(ns+"admin", admin)
		api.IDToken.SetCustomClaim(ns+"plan", "platinum") // last value, first position
		api.AccessToken.SetCustomClaim(ns+"tenant", ev.Client.Metadata["tenant"])
		api.AccessToken.AddScope("read:x")
		api.AccessToken.RemoveScope("admin")
		api.User.SetAppMetadata("seen", true)
		api.User.SetUserMetadata("theme", nil)
		api.Access.DenyWithCode(CodeUnauthorized, `no "quotes" <here>`)
		api.Access.Allow() // a deny stays a deny
		api.Log("info", "user %s", ev.User.UserID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id_token":{"claims":{"https://x.example/plan":"platinum","https://x.example/admin":true}},` +
		`"access_token":{"claims":{"https://x.example/tenant":"acme"},"add_scopes":["read:x"],"remove_scopes":["admin"]},` +
		`"app_metadata":{"seen":true},"user_metadata":{"theme":null},` +
		`"access":{"vote":"deny","reason":"no \"quotes\" \u003chere\u003e","code":"unauthorized"},` +
		`"log":[{"level":"info","msg":"user u1"}]}`
	if string(out) != want {
		t.Fatalf("output\n got %s\nwant %s", out, want)
	}
	if !json.Valid(out) {
		t.Fatal("output is not valid JSON")
	}
}

func TestHandleAbstainAndErrors(t *testing.T) {
	out, err := Handle([]byte(event), nil, func(*Event, *API) error { return nil })
	if err != nil || string(out) != `{"id_token":{"claims":{}},"access_token":{"claims":{}}}` {
		t.Fatalf("abstain: %s %v", out, err)
	}
	boom := errors.New("boom")
	if _, err := Handle([]byte(event), nil, func(*Event, *API) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("rule error not returned: %v", err)
	}
	if _, err := Handle([]byte(`{"user":[]}`), nil, func(*Event, *API) error { return nil }); err == nil || !strings.Contains(err.Error(), "decoding the event") {
		t.Fatalf("bad event: %v", err)
	}
	_, err = Handle([]byte(event), nil, func(ev *Event, api *API) error {
		_, err := api.Host.IsMember("u1", "g")
		return err
	})
	if !errors.Is(err, ErrNoHost) {
		t.Fatalf("no host: %v", err)
	}
	_, err = Handle([]byte(event), nil, func(ev *Event, api *API) error {
		api.IDToken.SetCustomClaim("https://x.example/f", func() {})
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), `"https://x.example/f"`) {
		t.Fatalf("unencodable claim: %v", err)
	}
	var ev Event
	_ = json.Unmarshal([]byte(`{"user":{"app_metadata":"not an object"}}`), &ev)
	if _, err := ev.User.AppMetadataKey("x", new(string)); err == nil {
		t.Fatal("app_metadata that is not an object must be an error")
	}
}

// FuzzHandle: any input either fails to decode or gives valid JSON commands.
func FuzzHandle(f *testing.F) {
	f.Add([]byte(event))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"user":{"app_metadata":null}}`))
	f.Add([]byte(`nul`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Handle(in, &fakeHost{}, func(ev *Event, api *API) error {
			var v any
			_, _ = ev.User.AppMetadataKey("plan", &v)
			api.IDToken.SetCustomClaim("https://x.example/u", ev.User.UserID)
			api.AccessToken.SetCustomClaim("https://x.example/v", v)
			return nil
		})
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid output %s for input %q", out, in)
		}
	})
}
