package dashboard

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
)

// fixture is the dashboard over real HTTP on loopback, on a real file
// store, file key store and file audit log in a temp dir, with a clock the
// test moves. Other test files of the package (the pages another helper
// adds) build on it.
type fixture struct {
	d     *Dashboard
	srv   *httptest.Server
	store *file.Store
	svc   *radmin.Service
	keys  radmin.KeyStore
	audit radmin.AuditLog
	clock *testClock
	// secrets of keys with every scope, read only.
	all, read string
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixtureOptions adjust the dashboard's Config before it is built.
type fixtureOptions struct {
	config func(*Config)
	doc    *authz.Document
}

func newFixture(t testing.TB, opts ...fixtureOptions) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := file.Open(ctx, dir+"/store", file.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	keys, err := adminfile.OpenKeyStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	audit, err := adminfile.OpenAuditLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, keys: keys, audit: audit, clock: &testClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}}
	_, f.all, err = keys.Create(ctx, "root", radmin.AllScopes())
	if err != nil {
		t.Fatal(err)
	}
	_, f.read, err = keys.Create(ctx, "reader", []string{radmin.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	f.svc, err = radmin.NewService(radmin.ServiceConfig{Store: st, Audit: audit, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	doc := sampleDoc()
	for _, o := range opts {
		if o.doc != nil {
			doc = o.doc
		}
	}
	if _, err := f.svc.Apply(ctx, radmin.Caller{KeyName: "seed"}, radmin.ImportChange(doc, true), radmin.IfMatch{}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Service: f.svc, Keys: keys, Log: slog.New(slog.DiscardHandler), Now: f.clock.Now}
	for _, o := range opts {
		if o.config != nil {
			o.config(&cfg)
		}
	}
	f.d, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.d)
	t.Cleanup(f.srv.Close)
	return f
}

// sampleDoc is a small model: Engineering nests Platform; one role of
// portal-client on Engineering; alice is a member of Platform.
func sampleDoc() *authz.Document {
	return &authz.Document{
		Groups: []authz.Group{
			{ID: "g-eng", Name: "Engineering", Description: "All engineers", Nested: []string{"g-plat"}, Roles: []string{"r-editor"}},
			{ID: "g-plat", Name: "Platform", Members: []string{"auth0|alice"}},
			{ID: "g-sales", Name: "Sales"},
		},
		Roles: []authz.Role{
			{ID: "r-editor", Name: "editor", ApplicationType: "client", ApplicationID: "portal-client", Permissions: []string{"p-write"}},
			{ID: "r-admin", Name: "admin", ApplicationType: "client", ApplicationID: "portal-client"},
		},
		Permissions: []authz.Permission{
			{ID: "p-write", Name: "write:docs", ApplicationType: "client", ApplicationID: "portal-client"},
		},
		Claimsmith: &authz.Section{Applications: []authz.Application{{ClientID: "portal-client", Name: "Portal", Metadata: map[string]string{"required_roles": "editor"}}}},
	}
}

// browser is a cookie-keeping client that does not follow redirects (the
// tests look at them).
type browser struct {
	t   testing.TB
	f   *fixture
	c   *http.Client
	jar *cookiejar.Jar
}

func (f *fixture) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is an answer read whole.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.f.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	revRe  = regexp.MustCompile(`name="rev" value="(\d+)"`)
)

// field returns the first value of a hidden input in a page.
func field(t testing.TB, body string, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, body)
	}
	return html.UnescapeString(m[1])
}

// signIn signs in with secret and returns the browser.
func (b *browser) signIn(secret string) *browser {
	b.t.Helper()
	p := b.get(Prefix + "signin")
	tok := field(b.t, p.body, csrfRe)
	res := b.post(Prefix+"signin", url.Values{"csrf": {tok}, "key": {secret}, "next": {Prefix}})
	if res.status != http.StatusSeeOther {
		b.t.Fatalf("sign-in: status %d:\n%s", res.status, res.body)
	}
	return b
}

// form gets path and returns its CSRF token and revision, for a post.
func (b *browser) form(path string) url.Values {
	b.t.Helper()
	p := b.get(path)
	if p.status != http.StatusOK {
		b.t.Fatalf("GET %s: %d\n%s", path, p.status, p.body)
	}
	v := url.Values{"csrf": {field(b.t, p.body, csrfRe)}}
	if m := revRe.FindStringSubmatch(p.body); m != nil {
		v.Set("rev", m[1])
	}
	return v
}

// with returns v plus the pairs kv.
func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, x := range v {
		out[k] = append([]string(nil), x...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Add(kv[i], kv[i+1])
	}
	return out
}

// revision is the store's revision now.
func (f *fixture) revision(t testing.TB) uint64 {
	t.Helper()
	rev, err := f.store.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

var (
	// inlineScript is a <script> element with content (not src=…).
	inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	// inlineHandler is an on…= attribute.
	inlineHandler = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
)

func itoa(i int) string { return strconv.Itoa(i) }

func createGroup(id, name string) *authz.CreateGroup { return &authz.CreateGroup{ID: id, Name: name} }
