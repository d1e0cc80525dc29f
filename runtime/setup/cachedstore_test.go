package setup

import (
	"context"
	"slices"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/cache"
)

// TestInvalidatingStoreCommits: the server's admin store keeps the store's
// Commit (the admin service's O(change) path) and a Commit invalidates the
// policy cache as Apply does, so the next login sees the write.
// Regression: the wrapper hid Commit, and every admin write took the slow
// read-replay path.
func TestInvalidatingStoreCommits(t *testing.T) {
	ctx := context.Background()
	st := memory.New(memory.Options{})
	pc, err := cache.New(st, cache.Options{}) // never started: no poller can catch up behind the test's back
	if err != nil {
		t.Fatal(err)
	}
	w := invalidating(st, pc)
	c, ok := w.(authz.Committer)
	if !ok {
		t.Fatalf("%T over a Committer does not implement authz.Committer", w)
	}
	if _, err := c.Commit(ctx, 0, authz.Footprint{}, &authz.CreateGroup{ID: "g1", Name: "admins"}); err != nil {
		t.Fatal(err)
	}
	q := authz.PolicyQuery{UserID: "u1", ClientID: "c1"}
	p, err := pc.ResolvePolicy(ctx, q)
	if err != nil || len(p.Groups) != 0 {
		t.Fatalf("before: %+v, %v", p, err)
	}
	ch, err := c.Commit(ctx, 0, authz.Footprint{}, &authz.AddGroupMembers{GroupID: "g1", UserIDs: []string{"u1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := pc.Revision(); got != ch.Revision {
		t.Fatalf("cache revision %d after a commit to %d", got, ch.Revision)
	}
	p, err = pc.ResolvePolicy(ctx, q)
	if err != nil || !slices.Equal(p.Groups, []string{"admins"}) {
		t.Fatalf("after the commit the cache answered %+v, %v (stale)", p, err)
	}
	// A failed commit invalidates nothing.
	rev := pc.Revision()
	if _, err := c.Commit(ctx, 0, authz.Footprint{}, &authz.AddGroupMembers{GroupID: "missing", UserIDs: []string{"u1"}}); err == nil {
		t.Fatal("commit to a missing group succeeded")
	}
	if pc.Revision() != rev {
		t.Fatalf("a failed commit moved the cache revision %d → %d", rev, pc.Revision())
	}
}

// TestInvalidatingStoreWithoutCommitter: a store without Commit is not
// made to look like one (the service would call a Commit that cannot work).
func TestInvalidatingStoreWithoutCommitter(t *testing.T) {
	st := applyOnly{memory.New(memory.Options{})}
	pc, err := cache.New(st, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := invalidating(st, pc).(authz.Committer); ok {
		t.Fatal("wrapper claims Commit over a store without it")
	}
}

// applyOnly hides the memory store's Commit.
type applyOnly struct{ DataStore }
