package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/login"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	adminredis "github.com/claimsmith/claimsmith/runtime/admin/redis"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	authzredis "github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// TestAdminCoexistsWithPolicyEndpoint: the admin routes and the extension's
// policy endpoint (POST /api/users/{user_id}/policy/{client_id}, x-api-key)
// share one server mux; each request reaches its own handler.
func TestAdminCoexistsWithPolicyEndpoint(t *testing.T) {
	f := newAdminFixture(t)
	routes := append(f.api.ServerRoutes(), hooks.Route{Pattern: login.PatternPolicy, Label: "auth0",
		Handler: &login.Handler{Name: "auth0", Run: login.PolicyRunner{Resolver: f.store}, Log: slog.New(slog.DiscardHandler),
			Dialect: &login.Policy{Keys: hooks.NewKeySet("ext-key")}}})
	mux, err := hooks.NewMux(routes, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("routes conflict: %v", err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f.srv = srv
	f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "g", "name": "G"})
	f.must(t, 204, "PATCH", "/api/groups/g/members", []string{"u1"})

	req, _ := http.NewRequest("POST", srv.URL+"/api/users/u1/policy/portal", bytes.NewReader([]byte(`{"connectionName":"db"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", "ext-key")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var pol authz.Policy
	if err := json.NewDecoder(res.Body).Decode(&pol); err != nil || res.StatusCode != 200 || len(pol.Groups) != 1 || pol.Groups[0] != "G" {
		t.Fatalf("policy endpoint: %d %+v %v", res.StatusCode, pol, err)
	}
	// The admin key is not the policy endpoint's key, and vice versa.
	if r := f.do(t, "POST", "/api/users/u1/policy/portal", f.all, `{"connectionName":"db"}`); r.status != 401 {
		t.Fatalf("admin key on the policy endpoint: %d", r.status)
	}
	if r := f.do(t, "GET", "/api/users/u1/groups", "", nil, "x-api-key", "ext-key"); r.status != 401 {
		t.Fatalf("policy key on the admin API: %d", r.status)
	}
	// The admin API's own policy read still works.
	if r := f.must(t, 200, "GET", "/api/users/u1/policy?client_id=portal", nil); !bytes.Contains(r.body, []byte(`"G"`)) {
		t.Fatalf("admin policy read: %s", r.body)
	}
}

// benchAdmin is the admin API over the memory store loaded with the sample
// extension export, called in-process (no network) so the numbers are the
// handler's own cost: authentication, snapshot, filtering, encoding.
func benchAdmin(b *testing.B) *adminFixture {
	f := newAdminFixture(b)
	sample, err := os.ReadFile("../../samples/data/extension-export.json")
	if err != nil {
		b.Fatal(err)
	}
	f.must(b, 200, "POST", "/api/import", sample)
	for i := range 1000 {
		f.must(b, 201, "POST", "/api/groups", map[string]any{"_id": fmt.Sprint("bg", i), "name": fmt.Sprint("Bench group ", i)})
	}
	return f
}

func serveBench(b *testing.B, h http.Handler, method, path, key string, body []byte, want int) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
}

// BenchmarkAdminGetGroup: one authenticated entity read.
func BenchmarkAdminGetGroup(b *testing.B) {
	f := benchAdmin(b)
	b.ReportAllocs()
	for b.Loop() {
		serveBench(b, f.api, "GET", "/api/groups/bg500", f.read, nil, 200)
	}
}

// BenchmarkAdminListGroups: a filtered, paged list over 1,009 groups.
func BenchmarkAdminListGroups(b *testing.B) {
	f := benchAdmin(b)
	b.ReportAllocs()
	for b.Loop() {
		serveBench(b, f.api, "GET", "/api/groups?q=group+5&per_page=50", f.read, nil, 200)
	}
}

// BenchmarkAdminAddMember: one audited write (store apply, audit fsync).
func BenchmarkAdminAddMember(b *testing.B) {
	f := benchAdmin(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		serveBench(b, f.api, "PATCH", "/api/groups/bg1/members", f.all, []byte(fmt.Sprintf(`["u%d"]`, i)), 204)
	}
}

// BenchmarkAdminPatchMembersRedis is PATCH /api/groups/{id}/members on the
// Redis store loaded with the benchmark model (10,000 groups) of 1,000 and
// 100,000 users, in-process: authentication, body, service, store write and
// the Redis audit record. A member is added, then removed (DELETE), so the
// group keeps its size; group-00000 is a typical group (~30 members at
// 100,000 users), group-09999 one of the largest (~390).
func BenchmarkAdminPatchMembersRedis(b *testing.B) {
	for _, users := range []int{1000, 100000} {
		b.Run(fmt.Sprint("users=", users), func(b *testing.B) {
			srv := redistest.Start(b, redistest.Options{})
			c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}})
			b.Cleanup(func() { _ = c.Close() })
			ctx := context.Background()
			st, err := authzredis.New(ctx, c, authzredis.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			if _, err := st.Import(ctx, 0, authzgen.Generate(authzgen.BenchSpec(users)), nil); err != nil {
				b.Fatal(err)
			}
			keys := adminredis.NewKeyStore(c, adminredis.Options{})
			_, secret, err := keys.Create(ctx, "bench", radmin.AllScopes())
			if err != nil {
				b.Fatal(err)
			}
			svc, err := radmin.NewService(radmin.ServiceConfig{Store: st, Audit: adminredis.NewAuditLog(c, adminredis.Options{})})
			if err != nil {
				b.Fatal(err)
			}
			api, err := New(Config{Service: svc, Keys: keys})
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`["auth0|bench-writer"]`)
			for _, group := range []string{"group-00000", "group-09999"} {
				b.Run(group, func(b *testing.B) {
					var took []time.Duration
					i := 0
					b.ReportAllocs()
					for b.Loop() {
						i++
						method := "PATCH"
						if i%2 == 0 {
							method = "DELETE"
						}
						start := time.Now()
						serveBench(b, api, method, "/api/groups/"+group+"/members", secret, body, 204)
						took = append(took, time.Since(start))
					}
					slices.Sort(took)
					b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns/op")
				})
			}
		})
	}
}
