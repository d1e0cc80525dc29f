// Package replaytest is the conformance suite every replay store
// (hooks/login's in-process ReplayCache, runtime/replay/redis) runs, so
// that they keep one contract.
package replaytest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/replay"
)

// Factory makes one fresh, empty store and returns a function opening views
// of it: every view sees the others' ids at once (an in-process store: the
// same value; Redis: the same server and prefix, another client).
type Factory func(t *testing.T) (open func() replay.Store)

// Stores runs the replay store contract.
func Stores(t *testing.T, fresh Factory) {
	ctx := context.Background()
	now := time.Now()
	window := now.Add(5 * time.Minute)
	remember := func(t *testing.T, s replay.Store, id string) bool {
		t.Helper()
		ok, err := s.Remember(ctx, id, now, window)
		if err != nil {
			t.Fatalf("remember %q: %v", id, err)
		}
		return ok
	}
	t.Run("SecondRememberIsAReplay", func(t *testing.T) {
		s := fresh(t)()
		if !remember(t, s, "msg_1") {
			t.Fatal("first remember: not fresh")
		}
		if remember(t, s, "msg_1") {
			t.Fatal("second remember: fresh, want a replay")
		}
		if !remember(t, s, "msg_2") {
			t.Fatal("another id: not fresh")
		}
	})
	t.Run("ForgetAllowsTheRetry", func(t *testing.T) {
		s := fresh(t)()
		remember(t, s, "msg_1")
		if err := s.Forget(ctx, "msg_1"); err != nil {
			t.Fatal(err)
		}
		if !remember(t, s, "msg_1") {
			t.Fatal("remember after forget: not fresh")
		}
		if err := s.Forget(ctx, "never-seen"); err != nil {
			t.Fatalf("forget an unknown id: %v", err)
		}
	})
	t.Run("EveryViewRefusesWhatAnotherAccepted", func(t *testing.T) {
		open := fresh(t)
		a, b := open(), open()
		if !remember(t, a, "msg_shared") {
			t.Fatal("node A: not fresh")
		}
		if remember(t, b, "msg_shared") {
			t.Fatal("node B accepted what node A accepted")
		}
		// A view opened later (a restarted node) refuses it too.
		if remember(t, open(), "msg_shared") {
			t.Fatal("a new view accepted what node A accepted")
		}
	})
	t.Run("ConcurrentRemembersAcceptOne", func(t *testing.T) {
		open := fresh(t)
		views := []replay.Store{open(), open()}
		for i := range 20 {
			id := fmt.Sprintf("msg_race_%d", i)
			var fresh atomic.Int32
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					ok, err := views[g%2].Remember(ctx, id, now, window)
					if err != nil {
						t.Error(err)
					}
					if ok {
						fresh.Add(1)
					}
				})
			}
			wg.Wait()
			if n := fresh.Load(); n != 1 {
				t.Fatalf("%s: %d concurrent remembers were fresh, want exactly 1", id, n)
			}
		}
	})
	t.Run("BinaryAndLongIDs", func(t *testing.T) {
		s := fresh(t)()
		for _, id := range []string{"native/a:\x00\xff", "supabase:" + string(make([]byte, 256)), "zitadel:a b*?[]"} {
			if !remember(t, s, id) || remember(t, s, id) {
				t.Fatalf("id %q: not remembered exactly once", id)
			}
		}
	})
}
