package rules_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
)

// TestRuleConfigErrors checks that each built-in rule refuses bad settings
// with a *runtime.SettingError naming the key.
func TestRuleConfigErrors(t *testing.T) {
	store := loadStore(t)
	reg := registry(t, store, time.Now, ns)
	cases := []struct {
		rule     string
		settings map[string]any
		key      string
		reason   string
	}{
		{rules.IDAuthorization, map[string]any{"id_token": map[string]any{"scopes": true}}, "id_token.scopes", "unknown key"},
		{rules.IDAuthorization, map[string]any{"claims": map[string]any{"roles": ""}}, "claims.roles", "empty claim name"},
		{rules.IDAuthorization, map[string]any{"from_extension": true, "persist": map[string]any{"groups": true}}, "persist", "from_extension"},
		{rules.IDAuthorization, map[string]any{"persist": "yes"}, "persist", "expected an object"},
		{rules.IDAuthorization, map[string]any{"persist_mode": "global"}, "persist_mode", `must be "extension" or "per_client"`},
		{rules.IDRequiredRoles, map[string]any{"metadata_key": ""}, "metadata_key", "empty"},
		{rules.IDRequiredRoles, map[string]any{"roles": "admin"}, "roles", "unknown key"},
		{rules.IDRequireVerifiedEmail, map[string]any{"message": 3}, "message", "expected a string"},
		{rules.IDAllowedConnections, map[string]any{"clients": map[string]any{"app": []any{}}}, "clients.app", "at least one"},
		{rules.IDTimeWindow, map[string]any{"time_zone": "Mars/Olympus"}, "time_zone", "not an IANA time zone"},
		{rules.IDTimeWindow, map[string]any{"days": []any{"mon", "funday"}}, "days[1]", `"funday" is not one of`},
		{rules.IDTimeWindow, map[string]any{"hours": "9-5"}, "hours", "not a time such as 08:30"},
		{rules.IDTimeWindow, map[string]any{"hours": "09:00"}, "hours", "not a range"},
		{rules.IDCopyMetadataClaims, map[string]any{}, "app_metadata", "at least one"},
		{rules.IDCopyMetadataClaims, map[string]any{"app_metadata": []any{"plan", ""}}, "app_metadata[1]", "empty key"},
		{rules.IDCopyMetadataClaims, map[string]any{"app_metadata": []any{"plan"}, "tokens": map[string]any{}}, "tokens", "selects no token"},
		{rules.IDAddRequestContext, map[string]any{"ip_claim": "", "country_claim": ""}, "ip_claim", "nothing to add"},
	}
	// Without a namespace (allow_unnamespaced) restricted names stay bare.
	bare := registry(t, store, time.Now, "")
	for _, c := range []struct {
		rule     string
		settings map[string]any
		key      string
	}{
		{rules.IDAuthorization, map[string]any{"claims": map[string]any{"groups": "sub"}}, "claims.groups"},
		{rules.IDCopyMetadataClaims, map[string]any{"app_metadata": []any{"plan", "aud"}}, "app_metadata[1]"},
		{rules.IDAddRequestContext, map[string]any{"country_claim": "acr"}, "country_claim"},
	} {
		ctor, _ := bare.Lookup(c.rule)
		_, err := ctor(runtime.SettingsDecoder(c.settings))
		var se *runtime.SettingError
		if !errors.As(err, &se) || se.Key != c.key || !strings.Contains(se.Reason, "is restricted") {
			t.Errorf("%s: err %v, want key %q restricted", c.rule, err, c.key)
		}
	}
	if ctor, _ := bare.Lookup(rules.IDAuthorization); ctor != nil {
		if _, err := ctor(runtime.SettingsDecoder(nil)); err != nil {
			t.Errorf("bare groups/roles/permissions must be allowed without a namespace: %v", err)
		}
	}
	for _, c := range cases {
		t.Run(c.rule+"/"+c.key, func(t *testing.T) {
			ctor, ok := reg.Lookup(c.rule)
			if !ok {
				t.Fatalf("rule %s not registered", c.rule)
			}
			_, err := ctor(runtime.SettingsDecoder(c.settings))
			var se *runtime.SettingError
			if !errors.As(err, &se) || se.Key != c.key || !strings.Contains(se.Reason, c.reason) {
				t.Fatalf("err %v, want key %q reason %q", err, c.key, c.reason)
			}
		})
	}
}

// FuzzRuleConfig feeds arbitrary settings to every built-in rule's
// constructor: none may panic, and every refusal is a *runtime.SettingError
// (so the operator is told which key to fix). Accepted rules must run.
func FuzzRuleConfig(f *testing.F) {
	seeds := []struct{ rule, settings string }{
		{rules.IDAuthorization, `{"id_token":{"groups":true},"persist":{"roles":true},"claims":{"groups":"g"}}`},
		{rules.IDAuthorization, `{"from_extension":true}`},
		{rules.IDRequiredRoles, `{"metadata_key":"roles_needed"}`},
		{rules.IDRequireVerifiedEmail, `{"message":"verify"}`},
		{rules.IDAllowedConnections, `{"clients":{"a":["x"]},"metadata_key":""}`},
		{rules.IDTimeWindow, `{"time_zone":"Asia/Tokyo","days":["SAT"],"hours":"22:00-24:00","clients":["a"]}`},
		{rules.IDCopyMetadataClaims, `{"app_metadata":["a"],"user_metadata":["b"],"tokens":{"access_token":true}}`},
		{rules.IDAddRequestContext, `{"ip_claim":"https://other.example/ip","country_claim":null}`},
		{rules.IDTimeWindow, `{"hours":"23:59-00:00","days":null}`},
	}
	for _, s := range seeds {
		f.Add(s.rule, []byte(s.settings))
	}
	store := loadStore(f)
	reg := registry(f, store, func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }, ns)
	ev := &runtime.Event{User: runtime.User{UserID: "auth0|alice", Groups: []string{"CN=Engineers"}},
		Client: runtime.Client{ClientID: "portal", Metadata: map[string]string{"required_roles": "admin"}}, Connection: runtime.Connection{Name: "corp-ad"}}
	f.Fuzz(func(t *testing.T, rule string, data []byte) {
		ctor, ok := reg.Lookup(rule)
		if !ok {
			return
		}
		var settings map[string]any
		if json.Unmarshal(data, &settings) != nil {
			return
		}
		r, err := ctor(runtime.SettingsDecoder(settings))
		if err != nil {
			var se *runtime.SettingError
			if !errors.As(err, &se) {
				t.Fatalf("%s: refusal %T %v is not a SettingError", rule, err, err)
			}
			return
		}
		if p, ok := r.(runtime.Provisioner); ok {
			if err := p.Provision(context.Background()); err != nil {
				t.Fatalf("provision: %v", err)
			}
		}
		var out runtime.Commands
		e := *ev
		if err := r.Run(context.Background(), &e, &out); err != nil {
			t.Fatalf("run: %v", err)
		}
	})
}
