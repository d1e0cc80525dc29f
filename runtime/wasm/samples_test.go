package wasm

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// pipeline builds a real runtime.Pipeline running one WebAssembly rule.
func pipeline(t *testing.T, l *Loader, entry runtime.RuleEntry) *runtime.Pipeline {
	t.Helper()
	cfg := runtime.PipelineConfig{Namespace: "https://example.com/", Rules: []runtime.RuleEntry{entry}}
	p, err := runtime.NewPipeline(context.Background(), cfg, runtime.Deps{
		Registry: runtime.NewRegistry(), Modules: l, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func enrich(t *testing.T, p *runtime.Pipeline, ev *runtime.Event) *runtime.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.Run(ctx, ev)
	if err != nil {
		t.Fatalf("pipeline Run: %v", err)
	}
	if len(res.Trace) != 1 || res.Trace[0].Kind != "wasm" {
		t.Fatalf("trace = %+v, want one wasm entry", res.Trace)
	}
	return res
}

func TestSampleWeekdayOnly(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	path := sample(t, "weekday-only")
	today := time.Now().UTC().Weekday()
	other := today + 3
	if other > 6 {
		other -= 7
	}
	allowed := pipeline(t, l, runtime.RuleEntry{Name: "weekday", Wasm: path, Config: map[string]any{"days": "Sat, " + today.String()[:3]}})
	res := enrich(t, allowed, sampleEvent())
	if !res.Decision.Allowed {
		t.Fatalf("today (%s) is allowed, but the login was denied: %+v", today, res.Decision)
	}
	if len(res.Trace[0].Log) == 0 || !strings.Contains(res.Trace[0].Log[0].Msg, "allowed day") {
		t.Errorf("trace log = %+v", res.Trace[0].Log)
	}

	denied := pipeline(t, l, runtime.RuleEntry{Name: "weekday", Wasm: path, Config: map[string]any{"days": other.String()[:3]}})
	res = enrich(t, denied, sampleEvent())
	if res.Decision.Allowed || res.Decision.Rule != "weekday" || res.Decision.Code != runtime.CodeAccessDenied ||
		res.Decision.Reason != fmt.Sprintf("logins to Dashboard are not allowed on %s", today) {
		t.Fatalf("decision = %+v", res.Decision)
	}

	// A pinned wall clock (claimsmith test --now) reaches the guest.
	sunday := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	pinned := newTestLoader(Options{Logger: testLogger(t), Now: func() time.Time { return sunday }})
	weekdays := pipeline(t, pinned, runtime.RuleEntry{Name: "weekday", Wasm: path})
	if res := enrich(t, weekdays, sampleEvent()); res.Decision.Allowed || !strings.HasSuffix(res.Decision.Reason, "on Sunday") {
		t.Fatalf("Sunday, default Mon–Fri: decision %+v", res.Decision)
	}

	bad := pipeline(t, l, runtime.RuleEntry{Name: "weekday", Wasm: path, Config: map[string]any{"utc_offset_hours": "lots"}})
	res = enrich(t, bad, sampleEvent())
	if res.Decision.Allowed || !strings.Contains(res.Trace[0].Error, `config utc_offset_hours: "lots"`) {
		t.Fatalf("a rule error must deny (on_error deny) and name the problem: %+v %+v", res.Decision, res.Trace[0])
	}
}

// modelResolver serves look-ups from an authorization model, as the store does.
type modelResolver struct{ m *authz.Model }

func (r modelResolver) ResolvePolicy(_ context.Context, q authz.PolicyQuery) (authz.Policy, error) {
	return r.m.Resolve(q), nil
}

func testModel() *authz.Model {
	return authz.NewModel(&authz.Document{
		Groups: []authz.Group{
			{ID: "g-emp", Name: "Employees", Nested: []string{"g-sales"}},
			{ID: "g-sales", Name: "dept-sales", Members: []string{"auth0|alice"}},
			{ID: "g-eng", Name: "dept-engineering", Mappings: []authz.Mapping{{ID: "m1", GroupName: "ad-engineering", ConnectionName: "corp-ad"}}},
			{ID: "g-con", Name: "Contractors", Members: []string{"auth0|alice", "auth0|bob"}},
		},
	}, 1)
}

func TestSampleDepartmentClaims(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t), Authz: modelResolver{testModel()}})
	p := pipeline(t, l, runtime.RuleEntry{Name: "dept", Wasm: sample(t, "department-claims")})
	res := enrich(t, p, sampleEvent())
	if !res.Decision.Allowed {
		t.Fatalf("decision = %+v (trace %+v)", res.Decision, res.Trace)
	}
	depts, _ := res.IDTokenClaims.Get("https://example.com/departments")
	if got := fmt.Sprint(depts); got != "[sales engineering]" {
		t.Errorf("departments = %s, want [sales engineering] (direct, then mapped from the AD group)", got)
	}
	if at, _ := res.AccessTokenClaims.Get("https://example.com/departments"); !reflect.DeepEqual(at, depts) {
		t.Errorf("access token departments = %v", at)
	}
	if c, _ := res.IDTokenClaims.Get("https://example.com/contractor"); c != true {
		t.Errorf("contractor = %v, want true", c)
	}

	// Without the IdP group, only the direct group remains; carol is in none.
	ev := sampleEvent()
	ev.User.UserID, ev.User.Groups = "auth0|carol", nil
	res = enrich(t, p, ev)
	if d, _ := res.IDTokenClaims.Get("https://example.com/departments"); fmt.Sprint(d) != "[]" {
		t.Errorf("carol's departments = %v", d)
	}
	if c, _ := res.IDTokenClaims.Get("https://example.com/contractor"); c != false {
		t.Errorf("carol contractor = %v", c)
	}

	// No store configured: the look-up fails the rule, which denies (fail closed).
	l2 := newTestLoader(Options{Logger: testLogger(t)})
	p2 := pipeline(t, l2, runtime.RuleEntry{Name: "dept", Wasm: sample(t, "department-claims")})
	res = enrich(t, p2, sampleEvent())
	if res.Decision.Allowed || !strings.Contains(res.Trace[0].Error, "no authorization store is configured") {
		t.Fatalf("decision %+v, trace %+v", res.Decision, res.Trace[0])
	}
}

func TestSampleAddTenantClaim(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	p := pipeline(t, l, runtime.RuleEntry{Name: "tenant", Wasm: sample(t, "add-tenant-claim"), Config: map[string]any{"namespace": "https://t.example/"}})
	for _, tc := range []struct {
		name   string
		change func(*runtime.Event)
		want   any
	}{
		{"email domain", func(*runtime.Event) {}, "acme.example"},
		{"client tenant wins", func(ev *runtime.Event) { ev.Client.Metadata["tenant"] = `Glo"bex` }, `Glo"bex`},
		{"unicode and escapes", func(ev *runtime.Event) { ev.User.Email = "zoë@Bücher.example" }, "bücher.example"},
		{"no email", func(ev *runtime.Event) { ev.User.Email = "" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := sampleEvent()
			tc.change(ev)
			res := enrich(t, p, ev)
			if res.Trace[0].Error != "" {
				t.Fatal(res.Trace[0].Error)
			}
			got, _ := res.IDTokenClaims.Get("https://t.example/tenant")
			at, _ := res.AccessTokenClaims.Get("https://t.example/tenant")
			if got != tc.want || at != tc.want {
				t.Fatalf("tenant claims = %v / %v, want %v", got, at, tc.want)
			}
		})
	}
}

func TestSampleDenyBlockedIPs(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	path := sample(t, "deny-blocked-ips")
	p := pipeline(t, l, runtime.RuleEntry{Name: "ips", Wasm: path, Config: map[string]any{"blocked_ips": " 203.0.113.9 ,198.51.100.23"}})
	res := enrich(t, p, sampleEvent())
	if res.Decision.Allowed || res.Decision.Reason != "login from a blocked IP address" || res.Decision.Rule != "ips" {
		t.Fatalf("blocked IP: decision %+v", res.Decision)
	}
	for _, ip := range []string{"198.51.100.2", "198.51.100.234", "203.0.113.91", ""} {
		ev := sampleEvent()
		ev.Request.IP = ip
		if res := enrich(t, p, ev); !res.Decision.Allowed {
			t.Errorf("IP %q is not blocked, but the login was denied: %+v", ip, res.Decision)
		}
	}
	// A lookalike key elsewhere in the event can only deny, never hide the IP.
	ev := sampleEvent()
	ev.Request.IP = "192.0.2.1"
	ev.User.UserMetadata = map[string]any{"x": map[string]any{"request": map[string]any{"ip": "203.0.113.9"}}}
	res = enrich(t, p, ev)
	t.Logf("lookalike key: allowed=%v", res.Decision.Allowed)

	unconfigured := pipeline(t, l, runtime.RuleEntry{Name: "ips", Wasm: path})
	if res := enrich(t, unconfigured, sampleEvent()); !res.Decision.Allowed {
		t.Fatalf("no blocked_ips configured: decision %+v", res.Decision)
	}
}

func TestRestrictedClaimRefusedByPipeline(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	p := pipeline(t, l, runtime.RuleEntry{Name: "sneaky", Wasm: hostileGuest(t), Config: map[string]any{"mode": "restricted"}})
	res := enrich(t, p, sampleEvent())
	if res.Decision.Allowed || res.Decision.Rule != "sneaky" {
		t.Fatalf("decision = %+v, want a deny naming the rule", res.Decision)
	}
	if !strings.Contains(res.Trace[0].Error, `"sub"`) {
		t.Errorf("trace error %q does not name the claim", res.Trace[0].Error)
	}
	if v, ok := res.IDTokenClaims.Get("sub"); ok {
		t.Fatalf("restricted claim sub was set to %v", v)
	}
}
