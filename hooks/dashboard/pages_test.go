package dashboard

import (
	"context"
	"html"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenfile "github.com/claimsmith/claimsmith/runtime/token/file"
)

// keySet is a real token key set over an in-memory key store.
func keySet(t testing.TB, now func() time.Time) *token.KeySet {
	t.Helper()
	store, err := tokenfile.NewKeyStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewKeySet(store, token.KeySetConfig{}, now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ks
}

// withPlatform wires the signing keys, a pipeline and metrics.
func withPlatform(t testing.TB, reg *prometheus.Registry) fixtureOptions {
	return fixtureOptions{config: func(c *Config) {
		c.Signing = keySet(t, c.Now)
		c.Rules = func() []runtime.StepInfo {
			return []runtime.StepInfo{{Name: "verified-email", Kind: "require-verified-email", Timeout: 100 * time.Millisecond}}
		}
		c.Metrics = reg
	}}
}

// Every page renders for a key with every scope and for a read-only one,
// and the read-only one sees no form that posts to the model.
func TestEveryPageRenders(t *testing.T) {
	reg := prometheus.NewRegistry()
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "claimsmith_rule_errors_total"}, []string{"rule", "cause"})
	reg.MustRegister(errs)
	errs.WithLabelValues("verified-email", "timeout").Add(3)
	f := newFixture(t, withPlatform(t, reg))
	paths := []string{"groups", "groups/g-eng", "groups/g-plat", "roles", "roles?app=portal-client", "roles/r-editor", "permissions/p-write",
		"applications", "applications/portal-client", "audit", "audit?actor=seed", "audit?from=2020-01-01T00:00", "keys", "rules"}
	for _, who := range []struct {
		name, secret string
		write        bool
	}{{"root", f.all, true}, {"reader", f.read, false}} {
		b := f.browser(t).signIn(who.secret)
		for _, p := range paths {
			res := b.get(Prefix + p)
			if res.status != http.StatusOK {
				t.Fatalf("%s GET %s: %d\n%s", who.name, p, res.status, res.body)
			}
			hasWrite := strings.Contains(res.body, `name="rev"`) || strings.Contains(res.body, `action="/admin/keys/rotate"`) ||
				strings.Contains(res.body, `method="post" action="/admin/groups"`)
			if !who.write && hasWrite {
				t.Errorf("reader sees write controls on %s", p)
			}
			if inlineScript.MatchString(res.body) || inlineHandler.MatchString(res.body) {
				t.Errorf("%s has inline script", p)
			}
		}
	}
	b := f.browser(t).signIn(f.all)
	// Before any sample: totals only.
	if body := b.get(Prefix + "rules").body; !strings.Contains(body, "verified-email") || !strings.Contains(body, "— / <strong>3</strong>") {
		t.Errorf("rules page lacks the rule's timeouts:\n%s", body)
	}
	// A sample, 2 more timeouts, then: 2 recent of 5.
	f.d.sampleRules()
	f.clock.Add(5 * time.Minute)
	errs.WithLabelValues("verified-email", "timeout").Add(2)
	if body := b.get(Prefix + "rules").body; !strings.Contains(body, `<strong class="field-error">2</strong> / <strong>5</strong>`) {
		t.Errorf("rules page lacks the recent timeouts:\n%s", body)
	}
	// Past the window, a newer sample is the baseline: nothing recent.
	f.clock.Add(RecentWindow)
	f.d.sampleRules()
	b.get(Prefix + "rules") // keeps the session from idling out
	f.clock.Add(RecentWindow)
	if body := b.get(Prefix + "rules").body; !strings.Contains(body, `0 / <strong>5</strong>`) {
		t.Errorf("old timeouts still counted as recent:\n%s", body)
	}
	if body := b.get(Prefix + "keys").body; !strings.Contains(body, `badge active`) {
		t.Errorf("keys page lacks the active key:\n%s", body)
	}
}

// formCase is a form post with bad input: the page answers with status
// and shows msg, and the store does not change.
type formCase struct {
	name, page, action string
	form               []string
	status             int
	msg                string
}

func TestFormsRefuseBadInput(t *testing.T) {
	f := newFixture(t, withPlatform(t, prometheus.NewRegistry()))
	b := f.browser(t).signIn(f.all)
	long := strings.Repeat("x", 5000)
	cases := []formCase{
		{"group without name", "groups", "groups", []string{"name", "  "}, 400, "is required"},
		{"group name taken", "groups", "groups", []string{"name", "engineering"}, 409, "is used by group"},
		{"group name too long", "groups", "groups", []string{"name", long}, 400, "at most"},
		{"rename empty", "groups/g-eng", "groups/g-eng/rename", []string{"name", ""}, 400, "is required"},
		{"rename to a taken name", "groups/g-eng", "groups/g-eng/rename", []string{"name", "Sales"}, 409, "is used by group"},
		{"delete a nested group without cascade", "groups/g-plat", "groups/g-plat/delete", nil, 409, "is used by group"},
		{"members empty paste", "groups/g-eng", "groups/g-eng/members/add", []string{"members", " ,\n "}, 400, "paste at least one id"},
		{"members bad utf-8", "groups/g-eng", "groups/g-eng/members/add", []string{"members", "auth0|\xff"}, 400, "not valid UTF-8"},
		{"nest an unknown group", "groups/g-eng", "groups/g-eng/nested/add", []string{"nested", "No Such Group"}, 400, "no group has the id or name"},
		{"nest itself", "groups/g-eng", "groups/g-eng/nested/add", []string{"nested", "g-eng"}, 400, "itself"},
		{"unknown role", "groups/g-sales", "groups/g-sales/roles/add", []string{"roles", "r-nope"}, 0, "r-nope"},
		{"mapping without connection", "groups/g-eng", "groups/g-eng/mappings/add", []string{"groupName", "CORP\\eng", "connectionName", ""}, 400, "is required"},
		{"role without application", "roles", "roles", []string{"name", "viewer", "applicationId", "", "applicationType", "client"}, 400, "is required"},
		{"role bad type", "roles", "roles", []string{"name", "viewer", "applicationId", "portal-client", "applicationType", "server"}, 400, "must be client"},
		{"role name taken", "roles", "roles", []string{"name", "editor", "applicationId", "portal-client", "applicationType", "client"}, 409, "editor"},
		{"permission without name", "roles", "permissions", []string{"name", "", "applicationId", "portal-client", "applicationType", "client"}, 400, "is required"},
		{"delete a used role", "roles/r-editor", "roles/r-editor/delete", nil, 409, "is used by group"},
		{"delete a used permission", "permissions/p-write", "permissions/p-write/delete", nil, 409, "is used by role"},
		{"role users empty", "roles/r-admin", "roles/r-admin/users/add", []string{"users", ""}, 400, "paste at least one id"},
		{"app metadata without =", "applications", "applications", []string{"client_id", "new-app", "metadata", "required_roles editor"}, 400, "has no '='"},
		{"app exists", "applications", "applications", []string{"client_id", "portal-client"}, 409, "registered already"},
		{"app metadata dup key", "applications/portal-client", "applications/portal-client/save", []string{"metadata", "a=1\na=2"}, 400, "repeats the key"},
		{"rotate bad alg", "keys", "keys/rotate", []string{"alg", "HS256"}, 400, "not one of"},
		{"missing revision", "groups/g-eng", "groups/g-eng/rename", []string{"name", "Eng", "rev", ""}, 400, "reload the page"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := b.form(Prefix + tc.page)
			for i := 0; i+1 < len(tc.form); i += 2 {
				v.Set(tc.form[i], tc.form[i+1])
			}
			before := f.revision(t)
			keysBefore := len(f.d.cfg.Signing.Infos())
			res := b.post(Prefix+tc.action, v)
			if tc.status != 0 && res.status != tc.status || res.status < 400 {
				t.Fatalf("status %d, want %d\n%s", res.status, tc.status, res.body)
			}
			if !strings.Contains(strings.ToLower(html.UnescapeString(res.body)), strings.ToLower(tc.msg)) || !strings.Contains(res.body, `role="alert"`) {
				t.Fatalf("page lacks the message %q:\n%s", tc.msg, res.body)
			}
			if !strings.Contains(res.body, "Nothing was changed") && !strings.Contains(res.body, "field-error") {
				t.Fatalf("page does not say nothing changed:\n%s", res.body)
			}
			if f.revision(t) != before || len(f.d.cfg.Signing.Infos()) != keysBefore {
				t.Fatal("a refused form changed the store")
			}
			// What was typed is kept for correcting it.
			for i := 0; i+1 < len(tc.form); i += 2 {
				if val := tc.form[i+1]; strings.TrimSpace(val) != "" && len(val) < 100 && !strings.Contains(val, "\xff") &&
					!strings.Contains(res.body, htmlEscape(val)) && tc.form[i] != "alg" && tc.form[i] != "applicationType" && tc.form[i] != "roles" {
					t.Errorf("typed %s=%q is not shown back", tc.form[i], val)
				}
			}
		})
	}
}

// A write whose page is out of date (another write came first) is refused
// with "changed by someone else — reload", and changes nothing.
func TestConflictShowsReload(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	v := b.form(Prefix + "groups/g-eng")
	// Someone else writes meanwhile (the JSON API, the CLI, another tab).
	if _, err := f.svc.Apply(context.Background(), radmin.Caller{KeyName: "other"},
		entityChange("group.update", "group", "g-sales", &authz.UpdateGroup{ID: "g-sales", Name: "Sales EMEA"}), radmin.IfMatch{}); err != nil {
		t.Fatal(err)
	}
	before := f.revision(t)
	for _, post := range []struct {
		action string
		kv     []string
	}{
		{"groups/g-eng/rename", []string{"name", "Eng"}},
		{"groups/g-eng/members/add", []string{"members", "auth0|bob"}},
		{"groups/g-eng/delete", []string{"cascade", "on"}},
	} {
		res := b.post(Prefix+post.action, with(v, post.kv...))
		if res.status != http.StatusConflict || !strings.Contains(res.body, "Changed by someone else — reload.") {
			t.Fatalf("%s on a stale page: %d\n%s", post.action, res.status, res.body)
		}
	}
	if f.revision(t) != before {
		t.Fatal("a stale write changed the store")
	}
	// After reloading, the same write goes through.
	v = b.form(Prefix + "groups/g-eng")
	if res := b.post(Prefix+"groups/g-eng/members/add", with(v, "members", "auth0|bob\nauth0|carol, auth0|bob")); res.status != http.StatusSeeOther {
		t.Fatalf("write after reload: %d\n%s", res.status, res.body)
	}
	m, _ := f.svc.Model(context.Background())
	if g := findGroup(m.Document(), "g-eng"); !slices.Equal(g.Members, []string{"auth0|bob", "auth0|carol"}) {
		t.Fatalf("members %v", g.Members)
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "|", "|").Replace(s)
}
