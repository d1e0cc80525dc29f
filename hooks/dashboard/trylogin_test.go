package dashboard

import (
	"bytes"
	"context"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// withPipeline gives the fixture's dashboard a real pipeline (authorization
// with persistence, required roles) over its store as the try-a-login
// runner.
func withPipeline(t *testing.T) fixtureOptions {
	return fixtureOptions{config: func(c *Config) {
		st := c.Service.Store().(interface {
			authz.PolicyResolver
			rules.ExtensionSettings
			authz.ApplicationReader
			runtime.ProfileStore
		})
		const ns = "https://claims.example.com/"
		reg, err := rules.NewRegistry(rules.Deps{Resolver: st, Settings: st, Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		p, err := runtime.NewPipeline(context.Background(), runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{
			{Rule: rules.IDAuthorization, Config: map[string]any{
				"access_token": map[string]any{"groups": true, "roles": true, "permissions": true},
				"persist":      map[string]any{"groups": true, "roles": true}}},
			{Rule: rules.IDRequiredRoles},
		}}, runtime.Deps{Registry: reg, Clients: rules.ClientDirectory(st), Profiles: st})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		c.TryLogin = p
	}}
}

// TestTryLogin: a dry run shows the decision, the new claim, the metadata
// patch and the trace with timings, and persists nothing; bad JSON is
// refused under the field; a read-only key sees no run button and is
// refused the POST.
func TestTryLogin(t *testing.T) {
	f := newFixture(t, withPipeline(t))
	b := f.browser(t).signIn(f.all)
	v := b.form(Prefix + "try-login")
	ev := `{"user":{"user_id":"auth0|alice","email":"alice@example.com","email_verified":true},"client":{"client_id":"portal-client"},"connection":{"name":"db"}}`
	p := b.post(Prefix+"try-login", with(v, "event", ev, "sample", "employee.json"))
	if p.status != 200 {
		t.Fatalf("dry run: %d\n%s", p.status, p.body)
	}
	for _, want := range []string{
		"<strong>Decision:</strong> allowed",
		"https://claims.example.com/roles", "[&#34;editor&#34;]",
		`<td data-label="Rule">authorization</td>`, `<td data-label="Rule">required-roles</td>`,
		"µs", `id="app-patch"`,
	} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, p.body)
		}
	}
	prof, err := f.store.Profile(context.Background(), "auth0|alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(prof.AppMetadata) != 0 {
		t.Fatalf("the dry run persisted the profile: %+v", prof)
	}

	p = b.post(Prefix+"try-login", with(v, "event", `{"user":`))
	if p.status != 400 || !strings.Contains(p.body, `id="event-err"`) || !strings.Contains(p.body, `{&#34;user&#34;:`) {
		t.Fatalf("bad event: %d\n%s", p.status, p.body)
	}
	if p := b.get(Prefix + "try-login?sample=nope.json"); p.status != 400 || !strings.Contains(p.body, "not one of the sample events") {
		t.Fatalf("unknown sample: %d", p.status)
	}
	if p := b.get(Prefix + "try-login?sample=unverified-email.json"); !strings.Contains(p.body, "email_verified") {
		t.Fatal("the sample is not prefilled")
	}

	r := f.browser(t).signIn(f.read)
	rv := r.form(Prefix + "try-login")
	if strings.Contains(r.get(Prefix+"try-login").body, `id="run"`) {
		t.Fatal("a read-only key sees the run button")
	}
	if p := r.post(Prefix+"try-login", with(rv, "event", ev)); p.status != 403 {
		t.Fatalf("read-only dry run: %d", p.status)
	}
}

// TestTryLoginWithoutPipeline says so instead of failing.
func TestTryLoginWithoutPipeline(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	if p := b.get(Prefix + "try-login"); !strings.Contains(p.body, "No login pipeline serves") {
		t.Fatal("no notice without a pipeline")
	}
	p := b.post(Prefix+"try-login", with(b.form(Prefix+"try-login"), "event", `{"user":{"user_id":"u"},"client":{"client_id":"c"}}`))
	if p.status != 503 || !strings.Contains(p.body, "No login pipeline serves") {
		t.Fatalf("%d\n%s", p.status, p.body)
	}
}

// TestTryLoginSamples: the embedded sample events are samples/events.
func TestTryLoginSamples(t *testing.T) {
	files, err := filepath.Glob("../../samples/events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("samples: %v", err)
	}
	if got := sampleNames(); len(got) != len(files) {
		t.Fatalf("embedded %v, samples/events has %v: copy them (cp samples/events/*.json hooks/dashboard/events/)", got, files)
	}
	for _, fn := range files {
		want, _ := os.ReadFile(fn)
		if got := readSample(filepath.Base(fn)); !bytes.Equal([]byte(got), want) {
			t.Fatalf("%s differs from its embedded copy: cp samples/events/*.json hooks/dashboard/events/", fn)
		}
		if _, err := runtime.DecodeEvent(want); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
	}
}

// TestTryLoginFromUserView: the user view links to a login of its user at
// its client, which the page prefills and which runs.
func TestTryLoginFromUserView(t *testing.T) {
	f := newFixture(t, withPipeline(t))
	b := f.browser(t).signIn(f.all)
	uv := b.get(Prefix + "users?user=auth0%7Calice&client=portal-client")
	m := regexp.MustCompile(`href="(/admin/try-login\?[^"]+)" id="try-as"`).FindStringSubmatch(uv.body)
	if m == nil {
		t.Fatalf("no try-a-login link:\n%s", uv.body)
	}
	p := b.get(html.UnescapeString(m[1]))
	ev := html.UnescapeString(regexp.MustCompile(`(?s)<textarea id="event"[^>]*>(.*?)</textarea>`).FindStringSubmatch(p.body)[1])
	if !strings.Contains(ev, `"user_id": "auth0|alice"`) || !strings.Contains(ev, `"client_id": "portal-client"`) {
		t.Fatalf("prefilled event:\n%s", ev)
	}
	res := b.post(Prefix+"try-login", with(b.form(Prefix+"try-login"), "event", ev))
	if !strings.Contains(res.body, "<strong>Decision:</strong> allowed") || !strings.Contains(res.body, "[&#34;editor&#34;]") {
		t.Fatalf("the prefilled login:\n%s", res.body)
	}
}
