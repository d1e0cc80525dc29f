package redis_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// countHook counts commands sent (a pipeline counts once: one round trip).
type countHook struct{ trips atomic.Int64 }

func (h *countHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *countHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.trips.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.trips.Add(1)
		return next(ctx, cmds)
	}
}

// TestLoginIsOneRoundTrip: once the structure is loaded, a login costs one
// command (EVALSHA) whatever the user's memberships; a membership change
// does not reload the structure, a structural change does, on every node.
func TestLoginIsOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	a := fixtureStore(t, srv, redis.Options{})
	hook := &countHook{}
	cb := newClient(t, srv.Addr())
	cb.AddHook(hook)
	b, err := redis.New(ctx, cb, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q := authz.PolicyQuery{UserID: "auth0|alice", ClientID: authztest.Portal, Connection: "corp-ad", IdPGroups: []string{"Domain Admins"}}
	if _, err := b.ResolvePolicy(ctx, q); err != nil { // loads the structure
		t.Fatal(err)
	}
	hook.trips.Store(0)
	for i := 0; i < 10; i++ {
		if _, err := b.ResolvePolicy(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if n := hook.trips.Load(); n != 10 {
		t.Fatalf("10 logins took %d round trips, want 10", n)
	}

	// Membership change on node A: node B answers it, still one trip.
	if _, err := a.Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "g-db", UserIDs: []string{"auth0|alice"}}); err != nil {
		t.Fatal(err)
	}
	hook.trips.Store(0)
	p, err := b.ResolvePolicy(ctx, q)
	if err != nil || !slices.Contains(p.Groups, "Databases") {
		t.Fatalf("after membership change: %+v %v", p, err)
	}
	if n := hook.trips.Load(); n != 1 {
		t.Fatalf("login after a membership change took %d round trips, want 1 (no structure reload)", n)
	}

	// Structural change on node A (rename a role): node B reloads once.
	if _, err := a.Apply(ctx, 0, &authz.UpdateRole{ID: "r-viewer", Name: "reader", ApplicationType: authz.TypeClient, ApplicationID: authztest.Portal}); err != nil {
		t.Fatal(err)
	}
	p, err = b.ResolvePolicy(ctx, q)
	if err != nil || !slices.Contains(p.Roles, "reader") || slices.Contains(p.Roles, "viewer") {
		t.Fatalf("after role rename: %+v %v", p, err)
	}
	hook.trips.Store(0)
	if _, err := b.ResolvePolicy(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n := hook.trips.Load(); n != 1 {
		t.Fatalf("second login after the reload took %d round trips, want 1", n)
	}
	// Answers equal the reference model's.
	m, err := a.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := m.Resolve(q)
	if !slices.Equal(p.Groups, want.Groups) || !slices.Equal(p.Roles, want.Roles) || !slices.Equal(p.Permissions, want.Permissions) {
		t.Fatalf("node B %+v, snapshot %+v", p, want)
	}
	if p.Revision != m.Revision() {
		t.Fatalf("policy revision %d, store %d", p.Revision, m.Revision())
	}
}

// TestImportDropsOldGeneration: re-importing replaces the keys of the old
// generation (no garbage left behind), and progress is reported up to the
// total.
func TestImportDropsOldGeneration(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s, err := redis.New(ctx, newClient(t, srv.Addr()), redis.Options{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	var calls, last, total int
	progress := func(done, tot int) { calls++; last, total = done, tot }
	if _, err := s.Import(ctx, 0, authztest.ResolutionFixture(), progress); err != nil {
		t.Fatal(err)
	}
	if calls < 2 || last != total || total == 0 {
		t.Fatalf("progress: %d calls, last %d of %d", calls, last, total)
	}
	keys1, _ := srv.Do("DBSIZE")
	for i := 0; i < 3; i++ {
		if _, err := s.Import(ctx, 0, authztest.ResolutionFixture(), nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Close() // waits for the background deletion of old generations
	keys2, _ := srv.Do("DBSIZE")
	if keys1 != keys2 {
		t.Fatalf("keys after 1 import: %s, after 4: %s (old generations left behind)", keys1, keys2)
	}
	if n, _ := srv.Do("EVAL", "return #redis.call('KEYS', 'claimsmith:{authz}:1:*')", "0"); n != "0" {
		t.Fatalf("%s keys of generation 1 remain", n)
	}
}
