package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

const ns = "https://example.com/"

// ruleFunc adapts a function to runtime.Rule.
type ruleFunc func(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error

func (f ruleFunc) Run(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error {
	return f(ctx, ev, out)
}

// testRules is a registry whose rules are the given functions, by id.
func testRules(t testing.TB, rules map[string]ruleFunc) *runtime.Registry {
	t.Helper()
	reg := runtime.NewRegistry()
	for id, f := range rules {
		f := f
		if err := reg.Register(id, func(runtime.Decoder) (runtime.Rule, error) { return f, nil }); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

func vote(v runtime.Vote) ruleFunc {
	return func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
		switch v {
		case runtime.Deny:
			out.Deny("denied by test", runtime.CodeUnauthorized)
		default:
			out.Access.Vote = v
		}
		return nil
	}
}

func entries(ids ...string) []runtime.RuleEntry {
	out := make([]runtime.RuleEntry, len(ids))
	for i, id := range ids {
		out[i] = runtime.RuleEntry{Name: fmt.Sprintf("r%d", i), Rule: id}
	}
	return out
}

func build(t testing.TB, cfg runtime.PipelineConfig, deps runtime.Deps) *runtime.Pipeline {
	t.Helper()
	if cfg.Namespace == "" && !cfg.AllowUnnamespaced {
		cfg.Namespace = ns
	}
	p, err := runtime.NewPipeline(context.Background(), cfg, deps)
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func event() *runtime.Event {
	return &runtime.Event{
		Trigger: runtime.TriggerPostLogin,
		User:    runtime.User{UserID: "auth0|alice", Email: "alice@example.com"},
		Client:  runtime.Client{ClientID: "app1", Name: "Portal"},
	}
}

func run(t testing.TB, p *runtime.Pipeline, ev *runtime.Event) *runtime.Result {
	t.Helper()
	res, err := p.Run(context.Background(), ev)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestRulesRunInOrderAndSeeEarlierChanges(t *testing.T) {
	var seen []string
	reg := testRules(t, map[string]ruleFunc{
		"first": func(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
			seen = append(seen, "first")
			out.IDToken.Claims.Set(ns+"step", 1)
			out.AppMetadata = map[string]any{"plan": "gold", "prefs": map[string]any{"a": 1.0}}
			out.Authorization = &runtime.Authorization{Groups: []string{"Staff"}, Roles: []string{"admin"}, Permissions: []string{"read"}}
			return nil
		},
		"second": func(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
			seen = append(seen, "second")
			if ev.Authorization == nil || ev.Authorization.Roles[0] != "admin" {
				return errors.New("authorization of the first rule not visible")
			}
			if ev.User.AppMetadata["plan"] != "gold" {
				return errors.New("app_metadata of the first rule not visible")
			}
			out.IDToken.Claims.Set(ns+"step", 2) // later value wins, first position kept
			out.AccessToken.Claims.Set(ns+"plan", ev.User.AppMetadata["plan"])
			out.AppMetadata = map[string]any{"prefs": map[string]any{"b": 2.0}}
			return nil
		},
	})
	p := build(t, runtime.PipelineConfig{Rules: entries("first", "second")}, runtime.Deps{Registry: reg})
	ev := event()
	res := run(t, p, ev)
	if !res.Decision.Allowed {
		t.Fatalf("denied: %+v trace %+v", res.Decision, res.Trace)
	}
	if strings.Join(seen, ",") != "first,second" {
		t.Fatalf("order %v", seen)
	}
	if v, _ := res.IDTokenClaims.Get(ns + "step"); v != 2 {
		t.Fatalf("step claim %v", v)
	}
	if v, _ := res.AccessTokenClaims.Get(ns + "plan"); v != "gold" {
		t.Fatalf("plan claim %v", v)
	}
	want := map[string]any{"plan": "gold", "prefs": map[string]any{"a": 1.0, "b": 2.0}}
	if !reflect.DeepEqual(res.AppMetadata, want) {
		t.Fatalf("app_metadata patch %v, want %v", res.AppMetadata, want)
	}
	if !reflect.DeepEqual(ev.User.AppMetadata, want) {
		t.Fatalf("event app_metadata %v", ev.User.AppMetadata)
	}
	if res.Authorization == nil || res.Authorization.Groups[0] != "Staff" {
		t.Fatalf("authorization %+v", res.Authorization)
	}
	if len(res.Trace) != 2 || res.Trace[0].Rule != "r0" || res.Trace[1].Kind != "second" {
		t.Fatalf("trace %+v", res.Trace)
	}
}

// TestDecisionMatrix covers every row of LoopBack's decision table.
func TestDecisionMatrix(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{
		"allow": vote(runtime.Allow), "deny": vote(runtime.Deny), "abstain": vote(runtime.Abstain),
	})
	cases := []struct {
		name            string
		votes           []string
		precedence, def string
		allowed         bool
		rule            string // the entry that settled it ("" for the default)
		ran             int    // rules in the trace
	}{
		{"all deny", []string{"deny", "deny"}, "deny", "", false, "r0", 1},
		{"all deny, allow precedence", []string{"deny", "deny"}, "allow", "", false, "r0", 2},
		{"all allow", []string{"allow", "allow"}, "deny", "", true, "r0", 2},
		{"all allow, allow precedence", []string{"allow", "allow"}, "allow", "", true, "r0", 2},
		{"abstain+allow", []string{"abstain", "allow"}, "deny", "", true, "r1", 2},
		{"abstain+allow, default deny", []string{"abstain", "allow"}, "deny", "deny", true, "r1", 2},
		{"abstain+deny", []string{"abstain", "deny"}, "deny", "", false, "r1", 2},
		{"abstain+deny, allow precedence", []string{"abstain", "deny"}, "allow", "", false, "r1", 2},
		{"deny+allow, deny precedence", []string{"deny", "allow"}, "deny", "", false, "r0", 1},
		{"allow+deny, deny precedence", []string{"allow", "deny"}, "deny", "", false, "r1", 2},
		{"deny+allow, allow precedence", []string{"deny", "allow"}, "allow", "", true, "r1", 2},
		{"allow+deny, allow precedence", []string{"allow", "deny"}, "allow", "", true, "r0", 2},
		{"all abstain, default allow", []string{"abstain", "abstain"}, "deny", "allow", true, "", 2},
		{"all abstain, default deny", []string{"abstain", "abstain"}, "deny", "deny", false, "", 2},
		{"all abstain, Auth0 defaults", []string{"abstain", "abstain"}, "", "", true, "", 2},
		{"no rules, default deny", nil, "", "deny", false, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := build(t, runtime.PipelineConfig{Precedence: c.precedence, Default: c.def, Rules: entries(c.votes...)}, runtime.Deps{Registry: reg})
			res := run(t, p, event())
			if res.Decision.Allowed != c.allowed || res.Decision.Rule != c.rule || len(res.Trace) != c.ran {
				t.Fatalf("got %+v with %d traced, want allowed=%v rule=%q ran=%d", res.Decision, len(res.Trace), c.allowed, c.rule, c.ran)
			}
			if !c.allowed && c.rule != "" && (res.Decision.Reason != "denied by test" || res.Decision.Code != runtime.CodeUnauthorized) {
				t.Fatalf("deny reason/code %+v", res.Decision)
			}
			if !c.allowed && c.rule == "" && res.Decision.Code != runtime.CodeAccessDenied {
				t.Fatalf("default deny code %+v", res.Decision)
			}
		})
	}
}

// fakeClock is a clock rules can advance to simulate slow work.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRuleTimeoutFollowsOnError(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	reg := testRules(t, map[string]ruleFunc{
		"slow": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			clock.Advance(150 * time.Millisecond)
			out.Access.Vote = runtime.Allow // output of an overrun rule is discarded
			out.IDToken.Claims.Set(ns+"slow", true)
			return nil
		},
		"claim": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.IDToken.Claims.Set(ns+"after", true)
			return nil
		},
	})
	for _, onError := range []string{"", "deny", "skip"} {
		t.Run("on_error="+onError, func(t *testing.T) {
			cfg := runtime.PipelineConfig{Rules: []runtime.RuleEntry{
				{Name: "slowpoke", Rule: "slow", OnError: onError}, {Name: "after", Rule: "claim"},
			}}
			p := build(t, cfg, runtime.Deps{Registry: reg, Now: clock.Now})
			res := run(t, p, event())
			te := res.Trace[0]
			if te.Rule != "slowpoke" || te.Error != `rule "slowpoke": timeout: rule ran 150ms, its limit is 100ms` {
				t.Fatalf("trace %+v", te)
			}
			if _, ok := res.IDTokenClaims.Get(ns + "slow"); ok {
				t.Fatal("output of a timed-out rule was applied")
			}
			if onError == "skip" {
				if !res.Decision.Allowed || !te.Skipped || len(res.Trace) != 2 {
					t.Fatalf("skip: %+v %+v", res.Decision, res.Trace)
				}
				if _, ok := res.IDTokenClaims.Get(ns + "after"); !ok {
					t.Fatal("rule after a skipped failure did not run")
				}
				return
			}
			if res.Decision.Allowed || res.Decision.Rule != "slowpoke" || res.Decision.Code != runtime.CodeAccessDenied ||
				!strings.Contains(res.Decision.Reason, "slowpoke") || len(res.Trace) != 1 {
				t.Fatalf("deny: %+v %+v", res.Decision, res.Trace)
			}
		})
	}
}

func TestRuleContextCarriesDeadline(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{
		"block": func(ctx context.Context, _ *runtime.Event, _ *runtime.Commands) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
				return errors.New("context never ended")
			}
		},
	})
	cfg := runtime.PipelineConfig{Rules: []runtime.RuleEntry{{Name: "blocker", Rule: "block", Timeout: "20ms"}}}
	p := build(t, cfg, runtime.Deps{Registry: reg})
	start := time.Now()
	res := run(t, p, event())
	// The rule gives up by itself after 5 s: an answer before that means
	// its context ended (a wall-clock bound a loaded run could miss is not
	// needed).
	if time.Since(start) >= 5*time.Second {
		t.Fatal("blocking rule was not interrupted at its deadline")
	}
	if res.Decision.Allowed || !strings.Contains(res.Trace[0].Error, "timeout") {
		t.Fatalf("%+v %+v", res.Decision, res.Trace)
	}
}

func TestPipelineBudget(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	step := func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
		clock.Advance(40 * time.Millisecond)
		return nil
	}
	reg := testRules(t, map[string]ruleFunc{"step": step})
	cfg := runtime.PipelineConfig{Timeout: "100ms", Rules: []runtime.RuleEntry{
		{Name: "a", Rule: "step", Timeout: "50ms"}, {Name: "b", Rule: "step", Timeout: "50ms"},
		{Name: "c", Rule: "step", Timeout: "50ms", OnError: "skip"}, {Name: "d", Rule: "step", Timeout: "50ms"},
	}}
	p := build(t, cfg, runtime.Deps{Registry: reg, Now: clock.Now})
	res := run(t, p, event())
	// a and b take 80ms; c would end at 120ms > 100ms budget: budget timeout,
	// skipped; d starts after the budget ran out and fails closed.
	if res.Trace[0].Error != "" || res.Trace[1].Error != "" {
		t.Fatalf("%+v", res.Trace)
	}
	if !strings.Contains(res.Trace[2].Error, "pipeline budget of 100ms ran out") || !res.Trace[2].Skipped {
		t.Fatalf("c: %+v", res.Trace[2])
	}
	if !strings.Contains(res.Trace[3].Error, "ran out before the rule started") || res.Decision.Allowed || res.Decision.Rule != "d" {
		t.Fatalf("d: %+v %+v", res.Trace[3], res.Decision)
	}
}

func TestCallerCancellationIsAnError(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{"abstain": vote(runtime.Abstain)})
	p := build(t, runtime.PipelineConfig{Rules: entries("abstain")}, runtime.Deps{Registry: reg})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Run(ctx, event()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

func TestPanickingRule(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{
		"boom": func(context.Context, *runtime.Event, *runtime.Commands) error {
			var m map[string]int
			m["x"] = 1 // a real runtime panic
			return nil
		},
		"allow": vote(runtime.Allow),
	})
	p := build(t, runtime.PipelineConfig{Rules: []runtime.RuleEntry{{Name: "kaboom", Rule: "boom"}, {Rule: "allow"}}}, runtime.Deps{Registry: reg})
	res := run(t, p, event())
	if res.Decision.Allowed || res.Decision.Rule != "kaboom" || !strings.Contains(res.Trace[0].Error, "panic: assignment to entry in nil map") {
		t.Fatalf("%+v %+v", res.Decision, res.Trace)
	}
	p = build(t, runtime.PipelineConfig{Rules: []runtime.RuleEntry{{Name: "kaboom", Rule: "boom", OnError: "skip"}, {Rule: "allow"}}}, runtime.Deps{Registry: reg})
	res = run(t, p, event())
	if !res.Decision.Allowed || !res.Trace[0].Skipped || res.Decision.Rule != "allow" {
		t.Fatalf("%+v %+v", res.Decision, res.Trace)
	}
}

func TestRuleErrorFollowsOnError(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{
		"fail": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.AppMetadata = map[string]any{"lost": true}
			return fmt.Errorf("backend down: %w", runtime.ErrUnavailable)
		},
	})
	p := build(t, runtime.PipelineConfig{Rules: []runtime.RuleEntry{{Name: "flaky", Rule: "fail"}}}, runtime.Deps{Registry: reg})
	res := run(t, p, event())
	if res.Decision.Allowed || res.Trace[0].Error != `rule "flaky": backend down: unavailable` || res.AppMetadata != nil {
		t.Fatalf("%+v %+v %v", res.Decision, res.Trace, res.AppMetadata)
	}
}

func TestRestrictedClaims(t *testing.T) {
	set := func(token, name string) ruleFunc {
		return func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			if token == "id" {
				out.IDToken.Claims.Set(name, "x")
			} else {
				out.AccessToken.Claims.Set(name, "x")
			}
			out.Access.Vote = runtime.Allow
			return nil
		}
	}
	cases := []struct {
		token, claim string
		unns         bool
		refused      string // substring of the error, "" when accepted
	}{
		{"id", "sub", false, `id_token claim "sub" is restricted`},
		{"access", "scope", false, `access_token claim "scope" is restricted`},
		{"access", "client_id", false, `access_token claim "client_id" is restricted`},
		{"id", "x5t#S256", false, `is restricted`},
		{"access", "aud", true, `is restricted`},
		{"id", "groups", false, `id_token claim "groups" must be namespaced (https://example.com/groups)`},
		{"access", "permissions", false, `must be namespaced`},
		{"access", "roles", true, ""},
		{"id", ns + "roles", false, ""},
		{"id", ns + "authz_overflow", false, "set by the pipeline only"},
		{"id", "favourite_colour", false, ""},
	}
	for _, c := range cases {
		t.Run(c.token+"/"+c.claim, func(t *testing.T) {
			reg := testRules(t, map[string]ruleFunc{"set": set(c.token, c.claim)})
			p := build(t, runtime.PipelineConfig{Namespace: ns, AllowUnnamespaced: c.unns, Rules: []runtime.RuleEntry{{Name: "setter", Rule: "set"}}}, runtime.Deps{Registry: reg})
			res := run(t, p, event())
			if c.refused == "" {
				if !res.Decision.Allowed {
					t.Fatalf("refused: %+v", res.Trace)
				}
				return
			}
			if res.Decision.Allowed || res.Trace[0].Rule != "setter" || !strings.Contains(res.Trace[0].Error, `rule "setter": `) ||
				!strings.Contains(res.Trace[0].Error, c.refused) {
				t.Fatalf("%+v %+v", res.Decision, res.Trace)
			}
		})
	}
}

func TestBadOutput(t *testing.T) {
	cases := map[string]ruleFunc{
		"id token scope": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.IDToken.AddScopes = append(out.IDToken.AddScopes, "read")
			return nil
		},
		"bad scope": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.AccessToken.AddScopes = append(out.AccessToken.AddScopes, "read write")
			return nil
		},
		"bad code": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.Deny("no", "teapot")
			return nil
		},
		"unencodable claim": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.IDToken.Claims.Set(ns+"f", func() {})
			return nil
		},
		"unencodable metadata": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.AppMetadata = map[string]any{"c": make(chan int)}
			return nil
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			reg := testRules(t, map[string]ruleFunc{"bad": f})
			p := build(t, runtime.PipelineConfig{Rules: entries("bad")}, runtime.Deps{Registry: reg})
			res := run(t, p, event())
			if res.Decision.Allowed || res.Trace[0].Error == "" {
				t.Fatalf("%+v", res.Trace)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{
		"a": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.AccessToken.AddScopes = append(out.AccessToken.AddScopes, "read", "write")
			return nil
		},
		"b": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.AccessToken.RemoveScopes = append(out.AccessToken.RemoveScopes, "write", "admin")
			return nil
		},
	})
	p := build(t, runtime.PipelineConfig{Rules: entries("a", "b")}, runtime.Deps{Registry: reg})
	res := run(t, p, event())
	if strings.Join(res.ScopesAdded, " ") != "read" || strings.Join(res.ScopesRemoved, " ") != "write admin" {
		t.Fatalf("added %v removed %v", res.ScopesAdded, res.ScopesRemoved)
	}
}

func TestStoredProfileMergedAndPatchesPersisted(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	if _, err := store.PatchProfile(ctx, "auth0|alice", map[string]any{
		"plan": "silver", "tenant": "acme", "prefs": map[string]any{"theme": "dark", "lang": "en"},
	}, map[string]any{"nickname": "al"}); err != nil {
		t.Fatal(err)
	}
	var sawPlan, sawTheme, sawLang any
	reg := testRules(t, map[string]ruleFunc{
		"observe": func(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
			sawPlan, sawTheme = ev.User.AppMetadata["plan"], ev.User.AppMetadata["prefs"].(map[string]any)["theme"]
			sawLang = ev.User.AppMetadata["prefs"].(map[string]any)["lang"]
			out.AppMetadata = map[string]any{"logins": 1.0, "prefs": map[string]any{"lang": "de"}, "tenant": nil}
			out.UserMetadata = map[string]any{"seen": true}
			return nil
		},
		"deny": vote(runtime.Deny),
		"never": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.AppMetadata = map[string]any{"never": true}
			return nil
		},
	})
	p := build(t, runtime.PipelineConfig{Rules: entries("observe", "deny", "never")}, runtime.Deps{Registry: reg, Profiles: store})
	ev := event()
	// The IdP sends its own plan and part of prefs: those win.
	ev.User.AppMetadata = map[string]any{"plan": "gold", "prefs": map[string]any{"theme": "light"}}
	res := run(t, p, ev)
	if sawPlan != "gold" || sawTheme != "light" || sawLang != "en" {
		t.Fatalf("rule saw plan=%v theme=%v lang=%v", sawPlan, sawTheme, sawLang)
	}
	if res.Decision.Allowed {
		t.Fatal("expected deny")
	}
	// Patches requested before the deny are returned and persisted.
	wantPatch := map[string]any{"logins": 1.0, "prefs": map[string]any{"lang": "de"}, "tenant": nil}
	if !reflect.DeepEqual(res.AppMetadata, wantPatch) {
		t.Fatalf("patch %v", res.AppMetadata)
	}
	prof, err := store.Profile(ctx, "auth0|alice")
	if err != nil {
		t.Fatal(err)
	}
	wantStored := map[string]any{"plan": "silver", "logins": 1.0, "prefs": map[string]any{"theme": "dark", "lang": "de"}}
	if !reflect.DeepEqual(prof.AppMetadata, wantStored) {
		t.Fatalf("stored app_metadata %v, want %v", prof.AppMetadata, wantStored)
	}
	if !reflect.DeepEqual(prof.UserMetadata, map[string]any{"nickname": "al", "seen": true}) {
		t.Fatalf("stored user_metadata %v", prof.UserMetadata)
	}
	// The next login (from an IdP without a user store) sees it.
	ev2 := event()
	res = run(t, p, ev2)
	if ev2.User.AppMetadata["logins"] != 1.0 || sawPlan != "silver" || sawLang != "de" {
		t.Fatalf("next login saw %v", ev2.User.AppMetadata)
	}
	_ = res
}

type profileErrStore struct{ runtime.ProfileStore }

func (profileErrStore) Profile(context.Context, string) (runtime.Profile, error) {
	return runtime.Profile{}, fmt.Errorf("disk on fire: %w", runtime.ErrUnavailable)
}

func TestProfileLoadFailureFailsTheRun(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{"allow": vote(runtime.Allow)})
	p := build(t, runtime.PipelineConfig{Rules: entries("allow")}, runtime.Deps{Registry: reg, Profiles: profileErrStore{}})
	if _, err := p.Run(context.Background(), event()); !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "auth0|alice") {
		t.Fatalf("err %v", err)
	}
}

// degradedProfiles is a profile store whose availability policy lets a
// login go on without it (as the Redis store with last_snapshot does while
// its Redis is away).
type degradedProfiles struct{ runtime.ProfileStore }

func (degradedProfiles) Profile(_ context.Context, userID string) (runtime.Profile, error) {
	return runtime.Profile{UserID: userID}, fmt.Errorf("redis away: %w: %w", runtime.ErrDegraded, runtime.ErrUnavailable)
}

func (degradedProfiles) PatchProfile(context.Context, string, map[string]any, map[string]any) (runtime.Profile, error) {
	return runtime.Profile{}, fmt.Errorf("redis away: %w: %w", runtime.ErrDegraded, runtime.ErrUnavailable)
}

// TestDegradedProfileStoreAnswersFlagged (issue 14 item 7): a store that
// answers ErrDegraded does not fail the login: the rules run on the
// metadata the IdP sent, the patch is still returned, and the answer names
// what it went without. On the old code the run failed (503/504).
func TestDegradedProfileStoreAnswersFlagged(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{"patch": func(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
		out.AppMetadata = map[string]any{"seen": ev.User.AppMetadata["idp"]}
		out.Access.Vote = runtime.Allow
		return nil
	}})
	p := build(t, runtime.PipelineConfig{Rules: entries("patch")}, runtime.Deps{Registry: reg, Profiles: degradedProfiles{}})
	ev := event()
	ev.User.AppMetadata = map[string]any{"idp": "sent"}
	res, err := p.Run(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Decision.Allowed || res.AppMetadata["seen"] != "sent" {
		t.Fatalf("decision %+v, patch %v", res.Decision, res.AppMetadata)
	}
	if want := []string{runtime.DegradedProfile, runtime.DegradedPatch}; !reflect.DeepEqual(res.Degraded, want) {
		t.Fatalf("Degraded = %q, want %q", res.Degraded, want)
	}
}

type clientDir map[string]runtime.Client

func (d clientDir) LookupClient(_ context.Context, id string) (runtime.Client, error) {
	c, ok := d[id]
	if !ok {
		return runtime.Client{}, fmt.Errorf("client %q: %w", id, runtime.ErrNotFound)
	}
	return c, nil
}

func TestClientFilledFromDirectory(t *testing.T) {
	var seen runtime.Client
	reg := testRules(t, map[string]ruleFunc{
		"look": func(_ context.Context, ev *runtime.Event, _ *runtime.Commands) error {
			seen = ev.Client
			return nil
		},
	})
	dir := clientDir{"hydra-app": {ClientID: "hydra-app", Name: "Billing", Metadata: map[string]string{"required_roles": "admin", "tier": "1"}}}
	p := build(t, runtime.PipelineConfig{Rules: entries("look")}, runtime.Deps{Registry: reg, Clients: dir})

	ev := event()
	ev.Client = runtime.Client{ClientID: "hydra-app"}
	run(t, p, ev)
	if seen.Name != "Billing" || seen.Metadata["required_roles"] != "admin" {
		t.Fatalf("client %+v", seen)
	}
	ev = event()
	ev.Client = runtime.Client{ClientID: "hydra-app", Metadata: map[string]string{"tier": "2"}}
	run(t, p, ev)
	if seen.Name != "Billing" || seen.Metadata["tier"] != "2" || seen.Metadata["required_roles"] != "admin" {
		t.Fatalf("IdP-sent values must win: %+v", seen)
	}
	ev = event()
	ev.Client = runtime.Client{ClientID: "unknown"}
	run(t, p, ev)
	if seen.Name != "" {
		t.Fatalf("%+v", seen)
	}
}

// TestDefaultAudience (issue 14 item 11): a login without an audience
// resolves for the application's default_audience, so a Hydra
// authorization_code token (empty granted_audience) gets the API roles its
// refresh (granted audience) gets; an audience the IdP sent wins.
func TestDefaultAudience(t *testing.T) {
	var aud string
	reg := testRules(t, map[string]ruleFunc{
		"look": func(_ context.Context, ev *runtime.Event, _ *runtime.Commands) error {
			aud = ev.Transaction.Audience
			return nil
		},
	})
	dir := clientDir{"portal": {ClientID: "portal", Name: "Portal", Metadata: map[string]string{runtime.DefaultAudienceKey: " https://api.example.com "}}}
	p := build(t, runtime.PipelineConfig{Rules: entries("look")}, runtime.Deps{Registry: reg, Clients: dir})
	ev := event()
	ev.Client, ev.Transaction.Audience = runtime.Client{ClientID: "portal"}, ""
	run(t, p, ev)
	if aud != "https://api.example.com" {
		t.Fatalf("audience without one sent = %q, want the default", aud)
	}
	ev = event()
	ev.Client, ev.Transaction.Audience = runtime.Client{ClientID: "portal"}, "https://other.example.com"
	run(t, p, ev)
	if aud != "https://other.example.com" {
		t.Fatalf("the audience sent must win: %q", aud)
	}
}

func TestClaimsBudgetOverflow(t *testing.T) {
	perms := make([]string, 300)
	for i := range perms {
		perms[i] = fmt.Sprintf("read:document-%04d", i)
	}
	reg := testRules(t, map[string]ruleFunc{
		"authz": func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
			out.AccessToken.Claims.Set(ns+"roles", []string{"editor"})
			out.AccessToken.Claims.Set(ns+"permissions", perms)
			out.AccessToken.Claims.Set(ns+"bio", strings.Repeat("b", 80)) // never dropped
			out.IDToken.Claims.Set(ns+"roles", []string{"editor"})
			return nil
		},
	})
	t.Run("drop", func(t *testing.T) {
		p := build(t, runtime.PipelineConfig{Rules: entries("authz")}, runtime.Deps{Registry: reg})
		res := run(t, p, event())
		if !res.Decision.Allowed {
			t.Fatalf("%+v", res.Decision)
		}
		if _, ok := res.AccessTokenClaims.Get(ns + "permissions"); ok {
			t.Fatal("permissions kept over budget")
		}
		if v, _ := res.AccessTokenClaims.Get(ns + "authz_overflow"); v != true {
			t.Fatalf("overflow claim %v", v)
		}
		if v, _ := res.AccessTokenClaims.Get(ns + "roles"); !reflect.DeepEqual(v, []string{"editor"}) {
			t.Fatalf("roles %v", v)
		}
		if _, ok := res.IDTokenClaims.Get(ns + "authz_overflow"); ok {
			t.Fatal("id token under budget got the overflow claim")
		}
		last := res.Trace[len(res.Trace)-1]
		if last.Rule != "claims-budget" || !strings.Contains(last.Log[0].Msg, "dropped https://example.com/permissions") {
			t.Fatalf("trace %+v", last)
		}
	})
	t.Run("deny policy", func(t *testing.T) {
		p := build(t, runtime.PipelineConfig{ClaimsBudget: runtime.BudgetConfig{Overflow: "deny"}, Rules: entries("authz")}, runtime.Deps{Registry: reg})
		res := run(t, p, event())
		if res.Decision.Allowed || res.Decision.Rule != "claims-budget" || res.AccessTokenClaims != nil {
			t.Fatalf("%+v", res.Decision)
		}
	})
	t.Run("still over after dropping", func(t *testing.T) {
		p := build(t, runtime.PipelineConfig{ClaimsBudget: runtime.BudgetConfig{AccessToken: 64}, Rules: entries("authz")}, runtime.Deps{Registry: reg})
		res := run(t, p, event())
		if res.Decision.Allowed || !strings.Contains(res.Trace[len(res.Trace)-1].Error, "over the budget of 64") {
			t.Fatalf("%+v %+v", res.Decision, res.Trace)
		}
	})
	t.Run("no budget", func(t *testing.T) {
		p := build(t, runtime.PipelineConfig{ClaimsBudget: runtime.BudgetConfig{AccessToken: -1}, Rules: entries("authz")}, runtime.Deps{Registry: reg})
		res := run(t, p, event())
		if v, _ := res.AccessTokenClaims.Get(ns + "permissions"); len(v.([]string)) != 300 {
			t.Fatal("list changed without a budget")
		}
	})
}

type lifecycleRule struct {
	log         *[]string
	failProvide bool
}

func (r *lifecycleRule) Run(context.Context, *runtime.Event, *runtime.Commands) error { return nil }
func (r *lifecycleRule) Provision(context.Context) error {
	*r.log = append(*r.log, "provision")
	if r.failProvide {
		return &runtime.SettingError{Key: "store", Reason: "cannot reach the store"}
	}
	return nil
}
func (r *lifecycleRule) Validate() error { *r.log = append(*r.log, "validate"); return nil }
func (r *lifecycleRule) Cleanup() error  { *r.log = append(*r.log, "cleanup"); return nil }

func TestLifecycle(t *testing.T) {
	var log []string
	reg := runtime.NewRegistry()
	_ = reg.Register("life", func(runtime.Decoder) (runtime.Rule, error) { return &lifecycleRule{log: &log}, nil })
	_ = reg.Register("broken", func(runtime.Decoder) (runtime.Rule, error) { return &lifecycleRule{log: &log, failProvide: true}, nil })
	p, err := runtime.NewPipeline(context.Background(), runtime.PipelineConfig{Namespace: ns, Rules: entries("life")}, runtime.Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(log, ",") != "provision,validate,cleanup" {
		t.Fatalf("%v", log)
	}
	log = nil
	_, err = runtime.NewPipeline(context.Background(), runtime.PipelineConfig{Namespace: ns, Rules: entries("life", "broken")}, runtime.Deps{Registry: reg})
	var ce *runtime.ConfigError
	if !errors.As(err, &ce) || ce.Entry != 1 || ce.Key != "config.store" {
		t.Fatalf("err %v", err)
	}
	if strings.Join(log, ",") != "provision,validate,provision,cleanup,cleanup" {
		t.Fatalf("built rules must be cleaned up: %v", log)
	}
}

type fakeLoader struct{ specs []runtime.ModuleSpec }

func (l *fakeLoader) LoadModule(_ context.Context, spec runtime.ModuleSpec) (runtime.Rule, error) {
	l.specs = append(l.specs, spec)
	return ruleFunc(func(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
		out.IDToken.Claims.Set(ns+"module", spec.Name)
		return nil
	}), nil
}

func TestWasmEntriesGoToTheLoader(t *testing.T) {
	l := &fakeLoader{}
	cfg := runtime.PipelineConfig{Rules: []runtime.RuleEntry{{
		Wasm: "rules/geo.wasm", Memory: "32MiB", AllowedHosts: []string{"api.example.com"}, PoolSize: 4,
		Config: map[string]any{"country": "NL", "limit": 3, "nested": map[string]any{"a": true}},
	}}}
	p := build(t, cfg, runtime.Deps{Registry: runtime.NewRegistry(), Modules: l, BaseDir: "/etc/claimsmith"})
	if len(l.specs) != 1 {
		t.Fatal("loader not called")
	}
	s := l.specs[0]
	want := runtime.ModuleSpec{Name: "geo", Path: "/etc/claimsmith/rules/geo.wasm", Timeout: runtime.DefaultModuleTimeout,
		MemoryBytes: 32 << 20, AllowedHosts: []string{"api.example.com"}, PoolSize: 4,
		Config: map[string]string{"country": "NL", "limit": "3", "nested": `{"a":true}`}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("spec %+v\nwant %+v", s, want)
	}
	res := run(t, p, event())
	if v, _ := res.IDTokenClaims.Get(ns + "module"); v != "geo" || res.Trace[0].Kind != "wasm" {
		t.Fatalf("%+v", res)
	}
}

func TestConcurrentRuns(t *testing.T) {
	reg := testRules(t, map[string]ruleFunc{
		"echo": func(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
			out.IDToken.Claims.Set(ns+"user", ev.User.UserID)
			out.AppMetadata = map[string]any{"last": ev.User.UserID}
			return nil
		},
	})
	p := build(t, runtime.PipelineConfig{Rules: entries("echo", "echo")[:1]}, runtime.Deps{Registry: reg, Profiles: memory.New(memory.Options{})})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				ev := event()
				ev.User.UserID = fmt.Sprintf("u%d-%d", i, j)
				res, err := p.Run(context.Background(), ev)
				if err != nil {
					t.Error(err)
					return
				}
				if v, _ := res.IDTokenClaims.Get(ns + "user"); v != ev.User.UserID {
					t.Errorf("claim %v for %s", v, ev.User.UserID)
				}
			}
		}()
	}
	wg.Wait()
}

func TestEmptyPipelineNeedsNoNamespace(t *testing.T) {
	p, err := runtime.NewPipeline(context.Background(), runtime.PipelineConfig{}, runtime.Deps{Registry: runtime.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if res := run(t, p, event()); !res.Decision.Allowed || len(res.Trace) != 0 {
		t.Fatalf("%+v", res)
	}
}
