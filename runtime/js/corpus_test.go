package js

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

var (
	monday   = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	saturday = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
)

// testClock is a wall clock the tests move (claimsmith test --now does the
// same through Options.Now).
type testClock struct{ t atomic.Pointer[time.Time] }

func (c *testClock) set(t time.Time) { c.t.Store(&t) }
func (c *testClock) now() time.Time {
	if p := c.t.Load(); p != nil {
		return *p
	}
	return monday
}

func baseEvent() *runtime.Event {
	return &runtime.Event{
		Trigger: runtime.TriggerPostLogin,
		User: runtime.User{
			UserID: "auth0|alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice",
			AppMetadata: map[string]any{"plan": "gold"}, CreatedAt: "2026-01-01T00:00:00Z",
			LastPasswordReset: "2026-11-20T08:00:00Z", LoginsCount: 7,
		},
		Client:      runtime.Client{ClientID: "client-1", Name: "Dashboard", Metadata: map[string]string{"tier": "internal"}},
		Connection:  runtime.Connection{Name: "corp-ad", Strategy: "ad"},
		Request:     runtime.Request{IP: "198.51.100.23", UserAgent: "test", Hostname: "login.example", Query: map[string]string{"lang": "de", "tenant": "acme"}},
		Transaction: runtime.Transaction{RequestedScopes: []string{"openid", "profile", "admin"}, Protocol: "oidc-basic-profile"},
	}
}

// outcome is what Auth0 would do with a login: the decision, the claims,
// the scopes and app_metadata after the patch.
type outcome struct {
	Vote, Code, Reason string
	IDClaims           map[string]any
	ATClaims           map[string]any
	AddScopes          []string
	RemoveScopes       []string
	AppMetadata        map[string]any // after merging the patch
	Fail               string         // rule failure containing this
}

func outcomeOf(t *testing.T, ev *runtime.Event, out *runtime.Commands, err error) outcome {
	t.Helper()
	if err != nil {
		return outcome{Fail: err.Error()}
	}
	o := outcome{Vote: out.Access.Vote.String(), Code: out.Access.Code, Reason: out.Access.Reason}
	if len(out.AccessToken.AddScopes) > 0 {
		o.AddScopes = out.AccessToken.AddScopes
	}
	if len(out.AccessToken.RemoveScopes) > 0 {
		o.RemoveScopes = out.AccessToken.RemoveScopes
	}
	o.IDClaims = claimsMap(t, out.IDToken.Claims)
	o.ATClaims = claimsMap(t, out.AccessToken.Claims)
	o.AppMetadata = normalize(t, runtime.MergePatch(cloneMap(ev.User.AppMetadata), out.AppMetadata))
	return o
}

func cloneMap(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func claimsMap(t *testing.T, c runtime.Claims) map[string]any {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func normalize(t *testing.T, m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTestEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.PoolSize == 0 {
		opts.PoolSize = 1
	}
	e := New(opts)
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func loadJS(t testing.TB, e *Engine, spec runtime.ModuleSpec) *Rule {
	t.Helper()
	if spec.Name == "" {
		spec.Name = strings.TrimSuffix(filepath.Base(spec.Path), ".js")
	}
	if spec.Timeout == 0 {
		// Generous: these tests check answers, not speed, and run beside
		// other packages' tests under -race on two cores.
		spec.Timeout = 20 * time.Second
	}
	r, err := e.LoadModule(context.Background(), spec)
	if err != nil {
		t.Fatalf("LoadModule(%s): %v", spec.Path, err)
	}
	t.Cleanup(func() { _ = r.(*Rule).Cleanup() })
	return r.(*Rule)
}

func run(t testing.TB, r runtime.Rule, ev *runtime.Event) (*runtime.Commands, error) {
	t.Helper()
	var out runtime.Commands
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.Run(ctx, ev, &out)
	return &out, err
}

// TestAuth0TemplateCorpus runs Rules shaped like Auth0's public rule
// templates and their Actions equivalents, and checks each gives what
// Auth0 would: decision, deny code, claims, scopes, app_metadata.
func TestAuth0TemplateCorpus(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	e := newTestEngine(t, Options{Now: clock.now, Logger: testLogger(t)})
	base := func(o outcome) outcome {
		if o.Vote == "" && o.Fail == "" {
			o.Vote = "abstain"
		}
		if o.AppMetadata == nil && o.Fail == "" {
			o.AppMetadata = map[string]any{"plan": "gold"}
		}
		return o
	}
	type tc struct {
		name, file string
		now        time.Time
		edit       func(*runtime.Event)
		want       func(denyCode string) outcome
	}
	deny := func(reason string) func(string) outcome {
		return func(code string) outcome { return outcome{Vote: "deny", Code: code, Reason: reason} }
	}
	allow := func(string) outcome { return outcome{} }
	cases := []tc{
		{"verified", "email-verified", monday, nil, allow},
		{"unverified", "email-verified", monday, func(ev *runtime.Event) { ev.User.EmailVerified = false }, deny("Please verify your email before logging in.")},
		{"allowed domain", "domain-allowlist", monday, nil, allow},
		{"other domain", "domain-allowlist", monday, func(ev *runtime.Event) { ev.User.Email = "bob@evil.test" }, deny("Access denied.")},
		{"allowed ip", "ip-allowlist", monday, nil, allow},
		{"other ip", "ip-allowlist", monday, func(ev *runtime.Event) { ev.Request.IP = "192.0.2.1" }, func(string) outcome {
			return outcome{Fail: "Access denied from this IP address."}
		}},
		{"unblocked ip", "ip-blocklist", monday, nil, allow},
		{"blocked ip", "ip-blocklist", monday, func(ev *runtime.Event) { ev.Request.IP = "192.0.2.66" }, deny("Access denied from this IP address.")},
		{"weekday", "weekday", monday, nil, allow},
		{"weekend", "weekday", saturday, nil, deny("This app is available during the week")},
		{"weekend other app", "weekday", saturday, func(ev *runtime.Event) { ev.Client.Name = "Other" }, allow},
		{"admin role", "roles", monday, nil, func(string) outcome {
			return outcome{IDClaims: map[string]any{"https://example.com/roles": []any{"admin"}},
				AppMetadata: map[string]any{"plan": "gold", "roles": []any{"admin"}}}
		}},
		{"user role", "roles", monday, func(ev *runtime.Event) { ev.User.Email = "carol@example.org" }, func(string) outcome {
			return outcome{IDClaims: map[string]any{"https://example.com/roles": []any{"user"}},
				AppMetadata: map[string]any{"plan": "gold", "roles": []any{"user"}}}
		}},
		{"unverified no role", "roles", monday, func(ev *runtime.Event) { ev.User.EmailVerified = false }, allow},
		{"query claims", "query-claims", monday, nil, func(string) outcome {
			return outcome{IDClaims: map[string]any{"https://example.com/lang": "de"}, ATClaims: map[string]any{"https://example.com/tenant": "acme"}}
		}},
		{"no query", "query-claims", monday, func(ev *runtime.Event) { ev.Request.Query = nil }, allow},
		{"enterprise connection", "connection-claims", monday, nil, func(string) outcome {
			return outcome{IDClaims: map[string]any{"https://example.com/connection": "corp-ad", "https://example.com/employee": true},
				AddScopes: []string{"read:intranet"}}
		}},
		{"database connection", "connection-claims", monday, func(ev *runtime.Event) {
			ev.Connection = runtime.Connection{Name: "Username-Password-Authentication", Strategy: "auth0"}
		}, func(string) outcome {
			return outcome{IDClaims: map[string]any{"https://example.com/connection": "Username-Password-Authentication"},
				RemoveScopes: []string{"admin"}}
		}},
		{"recent password", "password-age", monday, nil, allow},
		{"old password", "password-age", monday, func(ev *runtime.Event) { ev.User.LastPasswordReset = "2026-09-01T00:00:00Z" }, deny("please change your password")},
		{"never reset, old account", "password-age", monday, func(ev *runtime.Event) { ev.User.LastPasswordReset = "" }, deny("please change your password")},
	}
	for _, style := range []struct {
		dir, code string
	}{{"rules", runtime.CodeUnauthorized}, {"actions", runtime.CodeAccessDenied}} {
		rules := map[string]*Rule{}
		for _, c := range cases {
			if rules[c.file] == nil {
				rules[c.file] = loadJS(t, e, runtime.ModuleSpec{Name: c.file, Path: filepath.Join("testdata", "corpus", style.dir, c.file+".js")})
			}
		}
		for _, c := range cases {
			t.Run(style.dir+"/"+c.name, func(t *testing.T) {
				r := rules[c.file]
				if string(r.Style()) != style.dir {
					t.Fatalf("style detected %q, want %q", r.Style(), style.dir)
				}
				clock.set(c.now)
				ev := baseEvent()
				if c.edit != nil {
					c.edit(ev)
				}
				out, err := run(t, r, ev)
				got := outcomeOf(t, ev, out, err)
				want := base(c.want(style.code))
				if want.Fail != "" {
					if got.Fail == "" || !strings.Contains(got.Fail, want.Fail) {
						t.Fatalf("got %+v, want a rule failure mentioning %q", got, want.Fail)
					}
					var re *runtime.RuleError
					if !errors.As(err, &re) || re.Rule != c.file {
						t.Errorf("error %v is not a RuleError naming %q", err, c.file)
					}
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("got  %+v\nwant %+v", got, want)
				}
			})
		}
	}
}
