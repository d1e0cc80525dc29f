package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	adminredis "github.com/claimsmith/claimsmith/runtime/admin/redis"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	authzredis "github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// node is one claimsmith node on a shared Redis: its own client, store,
// audit log and admin service.
func node(tb testing.TB, addr string) *admin.Service {
	tb.Helper()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{addr}})
	tb.Cleanup(func() { _ = c.Close() })
	st, err := authzredis.New(context.Background(), c, authzredis.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: adminredis.NewAuditLog(c, adminredis.Options{})})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

// groupState is the audited state of a group, as the admin API records it.
func groupState(id string) func(*authz.Document) any {
	return func(doc *authz.Document) any {
		for i := range doc.Groups {
			if doc.Groups[i].ID == id {
				return &doc.Groups[i]
			}
		}
		return nil
	}
}

func addMembers(group string, users ...string) admin.Change {
	return admin.Change{Action: "group.members.add", Entity: "group", ID: group, State: groupState(group),
		Ops: []authz.Op{&authz.AddGroupMembers{GroupID: group, UserIDs: users}}}
}

// TestConcurrentWritersWithoutIfMatch: 50 writers without If-Match add one
// member each to one group, each through its own node of one Redis store
// (so they really race on the store's revision): none fails with a conflict,
// none is lost, and every write has its own audit record and revision.
func TestConcurrentWritersWithoutIfMatch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	nodes := make([]*admin.Service, 50)
	for i := range nodes {
		nodes[i] = node(t, srv.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := nodes[0].Apply(ctx, admin.Caller{KeyName: "setup"}, admin.Change{Action: "group.create", Entity: "group", ID: "g",
		Ops: []authz.Op{&authz.CreateGroup{ID: "g", Name: "G"}}}, admin.IfMatch{}); err != nil {
		t.Fatal(err)
	}
	const writers = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conflicts, failures int
	revs := map[uint64]bool{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := nodes[w%len(nodes)].Apply(ctx, admin.Caller{KeyName: fmt.Sprint("writer-", w)}, addMembers("g", fmt.Sprint("user-", w)), admin.IfMatch{})
			mu.Lock()
			defer mu.Unlock()
			var ce *runtime.ConflictError
			switch {
			case errors.As(err, &ce):
				conflicts++
			case err != nil:
				failures++
				t.Errorf("writer %d: %v", w, err)
			default:
				if revs[res.Revision] {
					t.Errorf("writer %d: revision %d committed twice", w, res.Revision)
				}
				revs[res.Revision] = true
			}
		}()
	}
	wg.Wait()
	if conflicts != 0 || failures != 0 {
		t.Fatalf("%d writers failed with a conflict, %d otherwise", conflicts, failures)
	}
	doc, _, err := nodes[0].Records(ctx, authz.Footprint{Groups: []string{"g"}})
	if err != nil || len(doc.Groups) != 1 {
		t.Fatalf("group: %+v %v", doc, err)
	}
	for w := range writers {
		if !slices.Contains(doc.Groups[0].Members, fmt.Sprint("user-", w)) {
			t.Errorf("lost update: user-%d is not a member", w)
		}
	}
	page, err := nodes[0].AuditLog(ctx, admin.AuditQuery{PerPage: 100, Action: "group.members.add"})
	if err != nil || page.Total != writers {
		t.Fatalf("%d audit records, %v", page.Total, err)
	}
	// Each record's before/after is the group as that write saw and left
	// it: one member more.
	for _, r := range page.Records {
		var before, after authz.Group
		if err := json.Unmarshal(r.Before, &before); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(r.After, &after); err != nil {
			t.Fatal(err)
		}
		if len(after.Members) != len(before.Members)+1 || r.RevisionAfter != r.RevisionBefore+1 {
			t.Fatalf("record %d: %d → %d members, revision %d → %d", r.Seq, len(before.Members), len(after.Members), r.RevisionBefore, r.RevisionAfter)
		}
	}
}

// newMemoryService is the service over the memory store with a file audit
// log.
func newMemoryService(t *testing.T) (*admin.Service, *memory.Store, admin.AuditLog) {
	t.Helper()
	st := memory.New(memory.Options{})
	audit, err := adminfile.OpenAuditLog(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, audit
}

// TestApplyIfMatch: a stale If-Match is a conflict naming both revisions and
// changes nothing; the current one commits.
func TestApplyIfMatch(t *testing.T) {
	ctx := context.Background()
	svc, st, _ := newMemoryService(t)
	res, err := svc.Apply(ctx, admin.Caller{}, admin.Change{Action: "group.create", Ops: []authz.Op{&authz.CreateGroup{ID: "g", Name: "G"}}}, admin.IfMatch{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(ctx, admin.Caller{}, addMembers("g", "u1"), admin.Expect(res.Revision+5)); !errors.Is(err, runtime.ErrConflict) {
		t.Fatalf("stale If-Match: %v", err)
	}
	if rev, _ := st.Revision(ctx); rev != res.Revision {
		t.Fatalf("a refused write changed the store: revision %d", rev)
	}
	if _, err := svc.Apply(ctx, admin.Caller{}, addMembers("g", "u1"), admin.Expect(res.Revision)); err != nil {
		t.Fatalf("current If-Match: %v", err)
	}
}

// TestApplyRefusedOpIsNotRetried: an op the model refuses fails at once with
// its own error and writes no audit record; a conflict that is not a lost
// race (an ambiguous name) is not retried either.
func TestApplyRefusedOpIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, _, audit := newMemoryService(t)
	if _, err := svc.Apply(ctx, admin.Caller{}, addMembers("missing", "u1"), admin.IfMatch{}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
	ambiguous := admin.Change{Action: "x", Reads: authz.Footprint{Groups: []string{"g"}}, Build: func(*authz.Document, *admin.Change) error {
		return fmt.Errorf("name used twice: %w", runtime.ErrConflict)
	}}
	if _, err := svc.Apply(ctx, admin.Caller{}, ambiguous, admin.IfMatch{}); !errors.Is(err, runtime.ErrConflict) || ctx.Err() != nil {
		t.Fatalf("ambiguous: %v (ctx %v)", err, ctx.Err())
	}
	if p, _ := audit.List(ctx, admin.AuditQuery{PerPage: 10}); p.Total != 0 {
		t.Fatalf("%d audit records for refused writes", p.Total)
	}
}

// TestApplyBuildSeesCurrentRecords: Build gets the records named by Reads
// and may refine the action; the audit record carries the state the
// change's records had before and after.
func TestApplyBuildSeesCurrentRecords(t *testing.T) {
	ctx := context.Background()
	svc, _, audit := newMemoryService(t)
	put := func(name string) admin.Change {
		return admin.Change{Entity: "application", ID: "app", Reads: authz.Footprint{Applications: true},
			State: func(d *authz.Document) any {
				if d.Claimsmith != nil {
					for _, a := range d.Claimsmith.Applications {
						if a.ClientID == "app" {
							return a
						}
					}
				}
				return nil
			},
			Build: func(view *authz.Document, ch *admin.Change) error {
				ch.Action = "application.create"
				if view.Claimsmith != nil && len(view.Claimsmith.Applications) > 0 {
					ch.Action = "application.update"
				}
				ch.Ops = []authz.Op{&authz.PutApplication{Application: authz.Application{ClientID: "app", Name: name}}}
				return nil
			}}
	}
	for _, name := range []string{"One", "Two"} {
		if _, err := svc.Apply(ctx, admin.Caller{KeyName: "k"}, put(name), admin.IfMatch{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := audit.List(ctx, admin.AuditQuery{PerPage: 10})
	if err != nil || p.Total != 2 {
		t.Fatalf("%+v %v", p, err)
	}
	if r := p.Records[1]; r.Action != "application.create" || r.Before != nil || string(r.After) != `{"client_id":"app","name":"One"}` {
		t.Fatalf("create record: %s %s → %s", r.Action, r.Before, r.After)
	}
	if r := p.Records[0]; r.Action != "application.update" || string(r.Before) != `{"client_id":"app","name":"One"}` || string(r.After) != `{"client_id":"app","name":"Two"}` || r.KeyName != "k" {
		t.Fatalf("update record: %s %s → %s", r.Action, r.Before, r.After)
	}
}

// BenchmarkApplyGroupMembers is one admin PATCH of group members through
// the service, audit included, on the Redis store (10,000 groups) with 1,000
// and 100,000 users: the cost must not grow with the model. The audit
// record holds only the ids written (IDListState); the store still reads
// the group it changes, so two groups are measured: a typical
// one (group-00000, upper levels: ~33 members at 100,000 users, as 80% of
// the groups) and one of the largest (group-09999, deepest level: ~390).
// p50-ns/op is the median write.
func BenchmarkApplyGroupMembers(b *testing.B) {
	for _, users := range []int{1000, 100000} {
		srv := redistest.Start(b, redistest.Options{})
		c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}})
		b.Cleanup(func() { _ = c.Close() })
		st, err := authzredis.New(context.Background(), c, authzredis.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		ctx := context.Background()
		if _, err := st.Import(ctx, 0, authzgen.Generate(authzgen.BenchSpec(users)), nil); err != nil {
			b.Fatal(err)
		}
		svc := node(b, srv.Addr())
		for _, group := range []string{"group-00000", "group-09999"} {
			b.Run(fmt.Sprintf("users=%d/%s", users, group), func(b *testing.B) {
				doc, _, err := st.Records(ctx, authz.Footprint{Groups: []string{group}})
				if err != nil || len(doc.Groups) != 1 {
					b.Fatal(doc, err)
				}
				b.ReportAllocs()
				// Add one member, then remove it: every write is a real
				// change and the group keeps its size.
				writer := []string{"auth0|bench-writer"}
				state := admin.IDListState("group", group, "members", writer)
				var took []time.Duration
				i := 0
				for b.Loop() {
					i++
					// Audited as the admin API audits it: the ids written.
					ch := admin.Change{Action: "group.members.add", Entity: "group", ID: group, State: state,
						Ops: []authz.Op{&authz.AddGroupMembers{GroupID: group, UserIDs: writer}}}
					if i%2 == 0 {
						ch = admin.Change{Action: "group.members.remove", Entity: "group", ID: group, State: state,
							Ops: []authz.Op{&authz.RemoveGroupMembers{GroupID: group, UserIDs: writer}}}
					}
					start := time.Now()
					if _, err := svc.Apply(ctx, admin.Caller{KeyName: "bench"}, ch, admin.IfMatch{}); err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(start))
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns/op")
				b.ReportMetric(float64(len(doc.Groups[0].Members)), "members")
			})
		}
	}
}

// TestIDListState: the written list is cut to the named ids, members and
// users are left out unless written, and the document is not changed.
func TestIDListState(t *testing.T) {
	doc := &authz.Document{
		Groups: []authz.Group{{ID: "g", Name: "G", Members: []string{"a", "b", "c"}, Roles: []string{"r1", "r2"},
			Mappings: []authz.Mapping{{ID: "m1", GroupName: "x", ConnectionName: "c"}, {ID: "m2"}}}},
		Roles: []authz.Role{{ID: "r1", Name: "R", ApplicationID: "app", Users: []string{"a", "b"}, Permissions: []string{"p1", "p2"}}},
	}
	for _, c := range []struct {
		entity, id, field string
		ids               []string
		want              string
	}{
		{"group", "g", "members", []string{"b", "z"}, `{"_id":"g","name":"G","members":["b"],"roles":["r1","r2"],"mappings":[{"_id":"m1","groupName":"x","connectionName":"c"},{"_id":"m2","groupName":"","connectionName":""}]}`},
		{"group", "g", "roles", []string{"r2"}, `{"_id":"g","name":"G","roles":["r2"],"mappings":[{"_id":"m1","groupName":"x","connectionName":"c"},{"_id":"m2","groupName":"","connectionName":""}]}`},
		{"group", "g", "mappings", []string{"m1"}, `{"_id":"g","name":"G","roles":["r1","r2"],"mappings":[{"_id":"m1","groupName":"x","connectionName":"c"}]}`},
		{"role", "r1", "users", []string{"a"}, `{"_id":"r1","name":"R","applicationId":"app","permissions":["p1","p2"],"users":["a"]}`},
		{"role", "r1", "permissions", []string{"p2"}, `{"_id":"r1","name":"R","applicationId":"app","permissions":["p2"]}`},
		{"group", "missing", "members", []string{"a"}, `null`},
	} {
		got, err := json.Marshal(admin.IDListState(c.entity, c.id, c.field, c.ids)(doc))
		if err != nil || string(got) != c.want {
			t.Errorf("%s %s.%s %v:\n got  %s (%v)\n want %s", c.entity, c.id, c.field, c.ids, got, err, c.want)
		}
	}
	if len(doc.Groups[0].Members) != 3 || len(doc.Roles[0].Users) != 2 {
		t.Fatalf("the document was changed: %+v", doc)
	}
}
