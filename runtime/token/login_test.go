package token

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

// ruleFunc adapts a function to runtime.Rule.
type ruleFunc func(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error

func (f ruleFunc) Run(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error {
	return f(ctx, ev, out)
}

// setterRule sets the claim the event's request query names (so fuzz
// inputs travel with the event, not through shared state) on one token,
// with a json.Number value, and adds a scope.
func setterRule(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
	q := ev.Request.Query
	v := any(json.Number(q["number"]))
	if q["number"] == "" {
		v = q["name"]
	}
	if q["token"] == "id" {
		out.IDToken.Claims.Set(q["name"], v)
	} else {
		out.AccessToken.Claims.Set(q["name"], v)
	}
	if q["scope"] != "" {
		out.AccessToken.AddScopes = append(out.AccessToken.AddScopes, q["scope"])
	}
	out.Access.Vote = runtime.Allow
	return nil
}

// FuzzPipelineAcceptImpliesMint: whatever claim name, number literal or
// scope a rule gives, a login the pipeline allows mints without error. A
// refusal must come from the pipeline, as a failure of the rule, before
// anything is persisted: before the one list, a rule setting "username"
// was allowed and minting then failed with 400.
func FuzzPipelineAcceptImpliesMint(f *testing.F) {
	fx := newFixture(f, ES256)
	reg := runtime.NewRegistry()
	if err := reg.Register("set", func(runtime.Decoder) (runtime.Rule, error) { return ruleFunc(setterRule), nil }); err != nil {
		f.Fatal(err)
	}
	var pipelines []*runtime.Pipeline
	for _, cfg := range []runtime.PipelineConfig{{Namespace: ns}, {AllowUnnamespaced: true}} {
		cfg.Rules = []runtime.RuleEntry{{Name: "setter", Rule: "set"}}
		p, err := runtime.NewPipeline(context.Background(), cfg, runtime.Deps{Registry: reg})
		if err != nil {
			f.Fatal(err)
		}
		pipelines = append(pipelines, p)
	}
	for _, name := range runtime.ReservedClaims() {
		f.Add(name, "", "", false)
		f.Add(name, "1", "read", true)
	}
	for _, s := range [][4]string{{"username", "", "", ""}, {"groups", "1", "", "id"}, {ns + "x", "Inf", "", ""}, {"x", "0x1p3", "", ""},
		{"x", "1e5", "é", ""}, {"x", "-0.5E-3", "a\"b", ""}, {"", "", "", ""}, {"x", "01", "", "id"}, {"sid ", "", "", ""}} {
		f.Add(s[0], s[1], s[2], s[3] == "id")
	}
	f.Fuzz(func(t *testing.T, name, number, scope string, idToken bool) {
		tok := "access"
		if idToken {
			tok = "id"
		}
		for _, p := range pipelines {
			ev := &runtime.Event{Trigger: runtime.TriggerPostLogin, User: runtime.User{UserID: "auth0|alice"}, Client: runtime.Client{ClientID: "app1"},
				Request: runtime.Request{Query: map[string]string{"name": name, "number": number, "scope": scope, "token": tok}}}
			res, err := p.Run(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Decision.Allowed {
				if res.Decision.Rule != "setter" && res.Decision.Rule != "claims-budget" {
					t.Fatalf("refused by %q, not as a rule failure: %+v", res.Decision.Rule, res.Trace)
				}
				continue
			}
			if _, err := fx.minter.MintLogin(context.Background(), ev, res); err != nil {
				t.Fatalf("pipeline allowed claim %q = %q (scope %q) on the %s token, minting failed: %v", name, number, scope, tok, err)
			}
		}
	})
}

// TestLiveIntrospectionEqualsLogin: a live answer carries exactly the
// claims the login put on the access token — the authorization rule's own
// claim names and lists, the groups an IdP-group mapping of the login's
// connection gave, the passed-through IdP groups — and applies the
// required-roles rule's custom metadata_key. Before, live answers used
// hard-coded names, resolved without the connection (mapped groups and
// their roles vanished) and read required_roles whatever the rule's key.
func TestLiveIntrospectionEqualsLogin(t *testing.T) {
	ctx := context.Background()
	f := newIntroFixture(t, ES256)
	store := memory.New(memory.Options{})
	doc := &authz.Document{
		Groups: []authz.Group{
			{ID: "g1", Name: "eng", Members: []string{"auth0|alice"}, Roles: []string{"r1"}},
			{ID: "g2", Name: "ops", Roles: []string{"r2"}, Mappings: []authz.Mapping{{ID: "m1", GroupName: "Domain Admins", ConnectionName: "corp-ad"}}},
		},
		Roles: []authz.Role{
			{ID: "r1", Name: "editor", ApplicationType: "client", ApplicationID: "app1", Permissions: []string{"p1"}},
			{ID: "r2", Name: "operator", ApplicationType: "client", ApplicationID: "app1", Permissions: []string{"p2"}},
		},
		Permissions: []authz.Permission{
			{ID: "p1", Name: "write:docs", ApplicationType: "client", ApplicationID: "app1"},
			{ID: "p2", Name: "deploy", ApplicationType: "client", ApplicationID: "app1"},
		},
		// The gate reads allowed_roles; required_roles names a role nobody
		// holds, so a gate on the default key would turn the answer inactive.
		Claimsmith: &authz.Section{Applications: []authz.Application{{ClientID: "app1", Name: "Docs",
			Metadata: map[string]string{"allowed_roles": "operator", "required_roles": "nobody"}}}},
	}
	if _, err := store.Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		t.Fatal(err)
	}
	reg := runtime.NewRegistry()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.Register(rules.IDAuthorization, func(d runtime.Decoder) (runtime.Rule, error) {
		return rules.NewAuthorization(store, store, ns, d)
	}))
	must(reg.Register(rules.IDRequiredRoles, func(d runtime.Decoder) (runtime.Rule, error) { return rules.NewRequiredRoles(d) }))
	p, err := runtime.NewPipeline(ctx, runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{
		{Rule: rules.IDAuthorization, Config: map[string]any{
			"claims":       map[string]any{"groups": "https://corp.example/teams", "roles": "app_roles"},
			"access_token": map[string]any{"groups": true, "roles": true, "permissions": true},
			"passthrough":  map[string]any{"groups": true},
		}},
		{Rule: rules.IDRequiredRoles, Config: map[string]any{"metadata_key": "allowed_roles"}},
	}}, runtime.Deps{Registry: reg, Clients: rules.ClientDirectory(store)})
	must(err)
	t.Cleanup(func() { _ = p.Close() })

	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin,
		User:        runtime.User{UserID: "auth0|alice", Groups: []string{"Domain Admins", "Staff"}},
		Client:      runtime.Client{ClientID: "app1"},
		Connection:  runtime.Connection{Name: "corp-ad"},
		Transaction: runtime.Transaction{Audience: "https://api.example.com", RequestedScopes: []string{"openid"}}}
	res, err := p.Run(ctx, ev)
	must(err)
	if !res.Decision.Allowed {
		t.Fatalf("login denied: %+v %+v", res.Decision, res.Trace)
	}
	toks, err := f.minter.MintLogin(ctx, ev, res)
	must(err)
	intro, err := NewIntrospector(f.verify, f.keys, f.revoked, store, store, IntrospectorConfig{Namespace: ns}, f.clock.Now, discard())
	must(err)
	intro.UseLoginRules(p.LoginRules())

	live := func() (Introspection, map[string]any) {
		t.Helper()
		ans, err := intro.Introspect(ctx, rs, IntrospectRequest{Token: toks.AccessToken.Token, Live: true})
		must(err)
		var m map[string]any
		must(json.Unmarshal(ans.JSON, &m))
		return ans, m
	}
	ans, got := live()
	if !ans.Active {
		t.Fatalf("inactive: %s", ans.JSON)
	}
	want := map[string][]string{
		"https://corp.example/teams": {"Domain Admins", "Staff", "eng", "ops"},
		ns + "app_roles":             {"editor", "operator"},
		ns + "permissions":           {"write:docs", "deploy"},
	}
	if len(res.AccessTokenClaims) != len(want) {
		t.Fatalf("login's access-token claims: %+v", res.AccessTokenClaims)
	}
	for _, c := range res.AccessTokenClaims {
		if !jsonEq(c.Value, want[c.Name]) {
			t.Errorf("login claim %s = %v, want %v", c.Name, c.Value, want[c.Name])
		}
		if !jsonEq(got[c.Name], want[c.Name]) {
			t.Errorf("live claim %s = %v, the login had %v", c.Name, got[c.Name], c.Value)
		}
	}
	for _, stray := range []string{ns + "groups", ns + "roles"} {
		if _, ok := got[stray]; ok {
			t.Errorf("live answer carries %s, which the login's claims do not", stray)
		}
	}
	// The same answer without live comes from the token itself.
	plain, err := intro.Introspect(ctx, rs, IntrospectRequest{Token: toks.AccessToken.Token})
	must(err)
	var pm map[string]any
	must(json.Unmarshal(plain.JSON, &pm))
	for name := range want {
		if !reflect.DeepEqual(pm[name], got[name]) {
			t.Errorf("%s: token %v, live %v", name, pm[name], got[name])
		}
	}

	// Dropping the mapping takes operator away: the allowed_roles gate
	// no longer passes, so the token is inactive.
	_, err = store.Apply(ctx, 0, &authz.RemoveGroupMappings{GroupID: "g2", MappingIDs: []string{"m1"}})
	if err != nil {
		t.Fatal(err)
	}
	if ans, _ := live(); ans.Active {
		t.Fatalf("still active without the mapped role: %s", ans.JSON)
	}
}

// TestReservedClaimRefusedByMinter: the minter refuses what the pipeline
// refuses, from the same list (defence in depth for direct callers).
func TestReservedClaimRefusedByMinter(t *testing.T) {
	f := newFixture(t, ES256)
	for _, name := range runtime.ReservedClaims() {
		_, err := f.minter.MintAccessToken(context.Background(), AccessTokenRequest{Subject: "s", ClientID: "c", Claims: runtime.Claims{{Name: name, Value: "x"}}})
		var ve *runtime.ValidationError
		if !errors.As(err, &ve) || ve.ID != name {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
