package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/hooks"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	adminredis "github.com/claimsmith/claimsmith/runtime/admin/redis"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	authzredis "github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// adminStoreKinds are the real backends every admin HTTP test runs against.
var adminStoreKinds = []string{"memory", "file", "redis"}

// adminTestStore is what the fixture needs of a backend.
type adminTestStore interface {
	authz.Store
	authz.ProfileLister
}

// openAdminTestStore opens a backend with the admin key store and audit log
// that go with it: files in a temp dir for memory and file, Redis for redis.
func openAdminTestStore(t testing.TB, kind string) (adminTestStore, radmin.KeyStore, radmin.AuditLog) {
	t.Helper()
	fileAdmin := func() (radmin.KeyStore, radmin.AuditLog) {
		dir := t.TempDir()
		keys, err := adminfile.OpenKeyStore(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		audit, err := adminfile.OpenAuditLog(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return keys, audit
	}
	switch kind {
	case "memory":
		k, a := fileAdmin()
		return memory.New(memory.Options{}), k, a
	case "redis":
		// A real redis-server on a free port (skipped without one, unless
		// $CLAIMSMITH_REQUIRE_REDIS is set).
		srv := redistest.Start(t, redistest.Options{})
		c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}})
		t.Cleanup(func() { _ = c.Close() })
		s, err := authzredis.New(context.Background(), c, authzredis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s, adminredis.NewKeyStore(c, adminredis.Options{}), adminredis.NewAuditLog(c, adminredis.Options{})
	case "file":
		s, err := file.Open(context.Background(), t.TempDir(), file.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		k, a := fileAdmin()
		return s, k, a
	}
	t.Fatalf("unknown store %q", kind)
	return nil, nil, nil
}

// adminFixture is the admin API over real HTTP on loopback, with a real
// store, file key store and file audit log, and one key per scope mix.
type adminFixture struct {
	api   *API
	srv   *httptest.Server
	store adminTestStore
	keys  radmin.KeyStore
	audit radmin.AuditLog
	// secrets of keys with: every scope; read only; write only; import only;
	// export only.
	all, read, write, imp, exp string
}

func newAdminFixture(t testing.TB) *adminFixture { return newAdminFixtureOn(t, "memory") }

func newAdminFixtureOn(t testing.TB, kind string) *adminFixture {
	t.Helper()
	f := &adminFixture{}
	f.store, f.keys, f.audit = openAdminTestStore(t, kind)
	mk := func(name string, scopes ...string) string {
		_, s, err := f.keys.Create(context.Background(), name, scopes)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f.all = mk("root", radmin.AllScopes()...)
	f.read = mk("reader", radmin.ScopeRead)
	f.write = mk("writer", radmin.ScopeWrite)
	f.imp = mk("importer", radmin.ScopeImport)
	f.exp = mk("exporter", radmin.ScopeExport)
	var err error
	svc, err := radmin.NewService(radmin.ServiceConfig{Store: f.store, Audit: f.audit, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.api, err = New(Config{Service: svc, Keys: f.keys, Profiles: f.store,
		Log: slog.New(slog.DiscardHandler), MaxImport: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// Mounted the way the server mounts it: its routes in a server mux.
	mux, err := hooks.NewMux(f.api.ServerRoutes(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

type adminResp struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v.
func (r adminResp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errText is the error_description of an error answer.
func (r adminResp) errText() string {
	var e hooks.ErrorBody
	_ = json.Unmarshal(r.body, &e)
	return e.Description
}

// do sends a request; body may be nil, a string/[]byte (sent as is) or a
// value (JSON-encoded). hdr adds headers as name, value pairs.
func (f *adminFixture) do(t testing.TB, method, path, key string, body any, hdr ...string) adminResp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return adminResp{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request and fails the test unless the status is want.
func (f *adminFixture) must(t testing.TB, want int, method, path string, body any, hdr ...string) adminResp {
	t.Helper()
	r := f.do(t, method, path, f.all, body, hdr...)
	if r.status != want {
		t.Fatalf("%s %s: want %d, got %d %s", method, path, want, r.status, r.body)
	}
	return r
}

// fails sends a request with the all-scopes key and checks the status and
// that the error names what it should.
func (f *adminFixture) fails(t testing.TB, want int, mention, method, path string, body any, hdr ...string) adminResp {
	t.Helper()
	before := f.revision(t)
	r := f.do(t, method, path, f.all, body, hdr...)
	if r.status != want {
		t.Fatalf("%s %s %v: want %d, got %d %s", method, path, body, want, r.status, r.body)
	}
	if !strings.Contains(r.errText(), mention) {
		t.Fatalf("%s %s: error %q does not mention %q", method, path, r.errText(), mention)
	}
	if after := f.revision(t); after != before {
		t.Fatalf("%s %s failed but changed the store (revision %d → %d)", method, path, before, after)
	}
	return r
}

func (f *adminFixture) revision(t testing.TB) uint64 {
	t.Helper()
	rev, err := f.store.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func (f *adminFixture) auditTotal(t testing.TB) int {
	t.Helper()
	p, err := f.audit.List(context.Background(), radmin.AuditQuery{PerPage: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p.Total
}

// lastAudit returns the newest audit record.
func (f *adminFixture) lastAudit(t testing.TB) radmin.Record {
	t.Helper()
	p, err := f.audit.List(context.Background(), radmin.AuditQuery{PerPage: 1})
	if err != nil || len(p.Records) == 0 {
		t.Fatalf("no audit record: %v", err)
	}
	return p.Records[0]
}
