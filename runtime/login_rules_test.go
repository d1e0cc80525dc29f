package runtime_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenfile "github.com/claimsmith/claimsmith/runtime/token/file"
)

// TestReservedClaimIsNamedRuleFailure: a rule setting any reserved claim
// (username among them, which the pipeline let through while the minter
// refused it) fails as a rule, with the rule and the claim named, and
// nothing of it is persisted — on either token, with or without a
// namespace.
func TestReservedClaimIsNamedRuleFailure(t *testing.T) {
	names := runtime.ReservedClaims()
	for _, must := range []string{"username", "token_type", "token_introspection", "claimsmith_login", "sub", "scope", "org_id"} {
		if !slices.Contains(names, must) {
			t.Fatalf("%q missing from ReservedClaims", must)
		}
	}
	longest := 0
	for _, name := range names {
		longest = max(longest, len(name))
	}
	if !slices.IsSorted(names) {
		t.Fatal("ReservedClaims is not sorted: ReservedClaim's binary search needs it")
	}
	if longest != 21 || !runtime.ReservedClaim("authorization_details") {
		t.Fatalf("longest reserved name is %d bytes; update maxReservedLen", longest)
	}
	ctx := context.Background()
	for _, name := range names {
		if !runtime.ReservedClaim(name) {
			t.Fatalf("ReservedClaim(%q) = false", name)
		}
		for _, tok := range []string{"id_token", "access_token"} {
			for _, unns := range []bool{false, true} {
				store := memory.New(memory.Options{})
				reg := testRules(t, map[string]ruleFunc{"set": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
					if tok == "id_token" {
						out.IDToken.Claims.Set(name, "x")
					} else {
						out.AccessToken.Claims.Set(name, "x")
					}
					out.AppMetadata = map[string]any{"touched": true}
					out.Access.Vote = runtime.Allow
					return nil
				}})
				cfg := runtime.PipelineConfig{AllowUnnamespaced: unns, Rules: []runtime.RuleEntry{{Name: "setter", Rule: "set"}}}
				if !unns {
					cfg.Namespace = ns
				}
				p := build(t, cfg, runtime.Deps{Registry: reg, Profiles: store})
				res := run(t, p, event())
				want := tok + ` claim "` + name + `" is restricted`
				if res.Decision.Allowed || res.Decision.Rule != "setter" || len(res.Trace) != 1 ||
					!strings.HasPrefix(res.Trace[0].Error, `rule "setter": `) || !strings.Contains(res.Trace[0].Error, want) {
					t.Fatalf("%s on %s (unnamespaced %v): %+v %+v", name, tok, unns, res.Decision, res.Trace)
				}
				if res.AppMetadata != nil || res.AccessTokenClaims != nil {
					t.Fatalf("%s: refused rule's commands applied: %+v", name, res)
				}
				if prof, err := store.Profile(ctx, "auth0|alice"); (err != nil && !errors.Is(err, runtime.ErrNotFound)) || len(prof.AppMetadata) > 0 {
					t.Fatalf("%s: profile persisted after a refused rule: %+v %v", name, prof, err)
				}
			}
		}
	}
	for _, ok := range []string{"", "usernames", "user", "groups", "roles", ns + "username", "acr act"} {
		if runtime.ReservedClaim(ok) {
			t.Errorf("ReservedClaim(%q) = true", ok)
		}
	}
}

func TestValidJSONNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "1.5": true, "-1.5e10": true, "1E+2": true, "0.0e-0": true,
		"": false, "-": false, "01": false, "1.": false, ".5": false, "1e": false, "Inf": false, "NaN": false,
		"0x1p3": false, "1_000": false, "+1": false, " 1": false, "1e+": false,
	} {
		if got := runtime.ValidJSONNumber(s); got != want {
			t.Errorf("ValidJSONNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestRequiredRolesCheck(t *testing.T) {
	g := runtime.RequiredRoles{MetadataKey: "allowed_roles"}
	md := map[string]string{"allowed_roles": " admin, ,editor ", "required_roles": "root"}
	for _, c := range []struct {
		held       []string
		listed, ok bool
	}{{nil, true, false}, {[]string{"editor"}, true, true}, {[]string{"root"}, true, false}} {
		if l, ok := g.Check(md, c.held); l != c.listed || ok != c.ok {
			t.Errorf("held %v: listed %v ok %v", c.held, l, ok)
		}
	}
	if l, ok := g.Check(map[string]string{"allowed_roles": " , "}, nil); l || !ok {
		t.Errorf("empty list: listed %v ok %v", l, ok)
	}
}

func TestPipelineLoginRules(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{"a": vote(runtime.Abstain)})
	p := build(t, runtime.PipelineConfig{Rules: entries("a")}, runtime.Deps{Registry: reg})
	if lr := p.LoginRules(); lr.Projection != nil || lr.Gates != nil {
		t.Fatalf("%+v", lr)
	}
}

// BenchmarkReservedClaim: the check runs for every claim of every login,
// in the pipeline and again in the minter.
func BenchmarkReservedClaim(b *testing.B) {
	names := []string{ns + "roles", ns + "permissions", "tenant", "username", "x5t#S256", "favourite_colour", "sub"}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, name := range names {
			if runtime.ReservedClaim(name) {
				n++
			}
		}
	}
	if n == 0 {
		b.Fatal("no reserved name found")
	}
}

// projectorRule is a rule that declares a projection, as the
// authorization rule does.
type projectorRule struct {
	ruleFunc
	proj runtime.Projection
}

func (r projectorRule) Projection() runtime.Projection { return r.proj }

// TestBudgetDropsTheProjectedClaims: with the authorization rule's claims
// renamed, the default overflow drop list follows the names it writes.
// Before, it named the default claims only: nothing was dropped and an
// over-budget login was denied.
func TestBudgetDropsTheProjectedClaims(t *testing.T) {
	perms := make([]string, 300)
	for i := range perms {
		perms[i] = fmt.Sprintf("read:document-%04d", i)
	}
	proj := runtime.Projection{Names: runtime.ClaimNames{Groups: ns + "teams", Roles: ns + "app_roles", Permissions: "https://api.example.com/scopes"},
		AccessToken: runtime.AuthzLists{Roles: true, Permissions: true}}
	reg := runtime.NewRegistry()
	if err := reg.Register("authz", func(runtime.Decoder) (runtime.Rule, error) {
		return projectorRule{proj: proj, ruleFunc: func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			a := &runtime.Authorization{Roles: []string{"editor"}, Permissions: perms}
			proj.Set(&out.AccessToken.Claims, proj.AccessToken, a)
			out.Authorization = a
			return nil
		}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	p := build(t, runtime.PipelineConfig{Rules: entries("authz")}, runtime.Deps{Registry: reg})
	if lr := p.LoginRules(); lr.Projection == nil || lr.Projection.Names != proj.Names {
		t.Fatalf("login rules %+v", lr)
	}
	res := run(t, p, event())
	if !res.Decision.Allowed {
		t.Fatalf("%+v %+v", res.Decision, res.Trace)
	}
	if _, ok := res.AccessTokenClaims.Get("https://api.example.com/scopes"); ok {
		t.Fatal("renamed permissions claim kept over budget")
	}
	if v, _ := res.AccessTokenClaims.Get(ns + "authz_overflow"); v != true {
		t.Fatalf("overflow claim %v", v)
	}
}

// TestBudgetCountsTheLoginContext: the access token's claims budget counts
// the claimsmith_login claim the minter adds (connection and IdP groups;
// live introspection needs it, so it is never dropped). Before, a login
// with many IdP groups got a token far over its budget with nothing
// dropped. The count is exact: a budget of the minted claims' size keeps
// every claim, one byte less drops a list.
func TestBudgetCountsTheLoginContext(t *testing.T) {
	ctx := context.Background()
	idpGroups := make([]string, 40)
	for i := range idpGroups {
		idpGroups[i] = fmt.Sprintf(`CORP\group-%03d <eng & "ops">`, i) // escaped in JSON
	}
	roles := []string{"user", "editor", "admin"}
	reg := testRules(t, map[string]ruleFunc{
		"authz": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.AccessToken.Claims.Set(ns+"roles", roles)
			out.AccessToken.Claims.Set(ns+"plan", "enterprise")
			out.Authorization = &runtime.Authorization{Roles: roles}
			return nil
		},
	})
	ev := func() *runtime.Event {
		e := event()
		e.Connection.Name = "corp-ad"
		e.User.Groups = idpGroups
		return e
	}
	pipeline := func(budget int) *runtime.Pipeline {
		return build(t, runtime.PipelineConfig{Rules: entries("authz"), ClaimsBudget: runtime.BudgetConfig{AccessToken: budget, Drop: []string{"roles"}}},
			runtime.Deps{Registry: reg})
	}

	// The size of what the minter writes: the rules' claims and the login
	// context, as one JSON object.
	e := ev()
	res := run(t, pipeline(-1), e)
	payload := mintedAccessClaims(t, ctx, e, res)
	if _, ok := payload[runtime.LoginContextClaim]; !ok {
		t.Fatalf("no %s in the minted token: %v", runtime.LoginContextClaim, payload)
	}
	counted := map[string]json.RawMessage{runtime.LoginContextClaim: payload[runtime.LoginContextClaim]}
	for _, c := range res.AccessTokenClaims {
		counted[c.Name] = payload[c.Name]
	}
	b, err := json.Marshal(counted)
	if err != nil {
		t.Fatal(err)
	}
	size := len(b)
	if size <= runtime.DefaultClaimsBudget/2 {
		t.Fatalf("the test's claims are only %d bytes", size)
	}

	res = run(t, pipeline(size), ev())
	if _, ok := res.AccessTokenClaims.Get(ns + "roles"); !ok || !res.Decision.Allowed {
		t.Fatalf("at a budget of exactly %d bytes: %+v %+v", size, res.Decision, res.AccessTokenClaims)
	}
	res = run(t, pipeline(size-1), ev())
	if _, ok := res.AccessTokenClaims.Get(ns + "roles"); ok || !res.Decision.Allowed {
		t.Fatalf("one byte over the budget, roles kept: %+v %+v", res.Decision, res.AccessTokenClaims)
	}
	if v, _ := res.AccessTokenClaims.Get(ns + "authz_overflow"); v != true {
		t.Fatalf("overflow claim %v", v)
	}
	last := res.Trace[len(res.Trace)-1]
	if last.Rule != "claims-budget" || len(last.Log) != 1 || !strings.Contains(last.Log[0].Msg, runtime.LoginContextClaim) {
		t.Fatalf("the budget's trace does not name the login context: %+v", last)
	}
}

// mintedAccessClaims mints res's access token and returns its claims.
func mintedAccessClaims(t *testing.T, ctx context.Context, ev *runtime.Event, res *runtime.Result) map[string]json.RawMessage {
	t.Helper()
	ks, err := tokenfile.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	set, err := token.NewKeySet(ks, token.KeySetConfig{Algorithm: token.ES256}, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Init(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := token.NewMinter(set, token.MinterConfig{Issuer: "https://claimsmith.example.com"}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := m.MintLogin(ctx, ev, res)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(toks.AccessToken.Token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
