package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// TestLastSnapshotAnswersWithoutProfile (issue 14 item 7): with
// last_snapshot and the store's Redis frozen or killed, the stored profile
// is reported missing with ErrDegraded (the login goes on without it)
// before the caller's deadline, and applications and the configuration
// come from the snapshot. With fail_closed the same outage is an error
// that is not ErrDegraded. On the old code every profile read failed with
// ErrTimeout/ErrUnavailable and the login failed.
func TestLastSnapshotAnswersWithoutProfile(t *testing.T) {
	for _, fault := range []string{"freeze", "kill"} {
		t.Run(fault, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{})
			s := appStore(t, srv, redis.Options{OnUnavailable: redis.LastSnapshot, RefreshInterval: 20 * time.Millisecond})
			closed := appStore(t, srv, redis.Options{Tag: "closed"})
			ctx := context.Background()
			if _, err := s.PatchProfile(ctx, alice.UserID, map[string]any{"plan": "gold"}, nil); err != nil {
				t.Fatal(err)
			}
			waitRevision(t, s, 2)
			switch fault {
			case "freeze":
				srv.Freeze()
				t.Cleanup(srv.Thaw)
			case "kill":
				srv.Kill()
			}
			for i := range 3 { // the first read finds the outage, later ones skip Redis
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				p, err := s.Profile(lctx, alice.UserID)
				if !errors.Is(err, runtime.ErrDegraded) || lctx.Err() != nil {
					t.Fatalf("read %d: Profile = %+v, %v (ctx %v); want ErrDegraded before the deadline", i, p, err, lctx.Err())
				}
				if a, err := s.Application(lctx, authztest.Portal); err != nil || a.ClientID != authztest.Portal {
					t.Fatalf("read %d: Application = %+v, %v; want the snapshot's", i, a, err)
				}
				if _, err := s.Snapshot(lctx); err != nil {
					t.Fatalf("read %d: Snapshot: %v", i, err)
				}
				if pol, err := s.ResolvePolicy(lctx, alice); err != nil || len(pol.Roles) == 0 {
					t.Fatalf("read %d: ResolvePolicy = %+v, %v", i, pol, err)
				}
				if !s.Down() {
					t.Fatalf("read %d: Down() = false during the outage", i)
				}
				cancel()
			}
			lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if _, err := closed.Profile(lctx, alice.UserID); err == nil || errors.Is(err, runtime.ErrDegraded) {
				t.Fatalf("fail_closed Profile during the outage: err = %v, want a failure that is not ErrDegraded", err)
			}
			if err := s.Serving(lctx); err != nil {
				t.Fatalf("Serving during the outage with a fresh snapshot: %v", err)
			}
			if err := closed.Serving(lctx); err == nil {
				t.Fatal("fail_closed Serving during the outage: nil, want an error")
			}
			// Redis back: the refresher notices, profiles are read again.
			if fault == "freeze" {
				srv.Thaw()
			} else {
				srv.Restart() // no persistence: the data is gone, which the marker tells
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				p, err := s.Profile(ctx, alice.UserID)
				if fault == "freeze" && err == nil && p.AppMetadata["plan"] == "gold" {
					break
				}
				if fault == "kill" && errors.Is(err, redis.ErrDataLoss) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the outage: Profile = %+v, %v", p, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// appStore is fixtureStore with the portal application registered.
func appStore(t *testing.T, srv *redistest.Server, opt redis.Options) *redis.Store {
	t.Helper()
	s := fixtureStore(t, srv, opt)
	app := authz.Application{ClientID: authztest.Portal, Name: "Portal", Metadata: map[string]string{"required_roles": "viewer"}}
	if _, err := s.Apply(context.Background(), 0, &authz.PutApplication{Application: app}); err != nil {
		t.Fatal(err)
	}
	return s
}

func waitRevision(t *testing.T, s *redis.Store, rev uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := s.Snapshot(context.Background())
		if err == nil && m.Revision() >= rev {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot did not reach revision %d: %v", rev, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDataLossFailsClosed (issue 14 item 8): a store Redis that comes back
// empty (restarted without its data, FLUSHALL) is not an empty store:
// every read fails with ErrDataLoss (never ErrNotFound for an application
// whose required_roles would vanish, never an empty policy), under both
// policies, and a server opening the empty Redis does not clear it; a
// restart with the data, or a new import, does. On the old code the reads
// answered an empty store.
func TestDataLossFailsClosed(t *testing.T) {
	for _, policy := range []string{redis.FailClosed, redis.LastSnapshot} {
		for _, fault := range []string{"flushall", "restart-empty"} {
			t.Run(policy+"/"+fault, func(t *testing.T) {
				srv := redistest.Start(t, redistest.Options{AppendOnly: true})
				s := appStore(t, srv, redis.Options{OnUnavailable: policy, RefreshInterval: 20 * time.Millisecond})
				ctx := context.Background()
				if err := s.Initialise(ctx); err != nil {
					t.Fatal(err)
				}
				// A restart with the data is no loss.
				srv.Restart()
				waitFor(t, func() error { _, err := s.Revision(ctx); return err })
				if _, err := s.Application(ctx, authztest.Portal); err != nil {
					t.Fatalf("after a restart with the data: %v", err)
				}
				switch fault {
				case "flushall":
					if _, err := srv.Do("FLUSHALL"); err != nil {
						t.Fatal(err)
					}
				case "restart-empty":
					srv.RestartEmpty()
				}
				waitFor(t, func() error {
					if _, err := s.Revision(ctx); !errors.Is(err, redis.ErrDataLoss) {
						return errors.New("Revision does not report the data loss yet")
					}
					return nil
				})
				// Another server opening the empty store does not make it good.
				other, err := redis.New(ctx, newClient(t, srv.Addr()), redis.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := other.Initialise(ctx); err != nil {
					t.Fatal(err)
				}
				checkLost(t, s)
				if err := s.Serving(ctx); !errors.Is(err, redis.ErrDataLoss) {
					t.Fatalf("Serving = %v, want ErrDataLoss", err)
				}
				// An import is the operator's recovery.
				if _, err := other.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()}); err != nil {
					t.Fatal(err)
				}
				waitFor(t, func() error { _, err := s.ResolvePolicy(ctx, alice); return err })
				if err := s.DataLoss(); err != nil {
					t.Fatalf("DataLoss after the import: %v", err)
				}
			})
		}
	}
}

func checkLost(t *testing.T, s *redis.Store) {
	t.Helper()
	ctx := context.Background()
	lost := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, redis.ErrDataLoss) || !errors.Is(err, runtime.ErrUnavailable) || errors.Is(err, runtime.ErrDegraded) {
			t.Fatalf("%s after the data loss: err = %v, want ErrDataLoss (ErrUnavailable)", what, err)
		}
	}
	_, err := s.ResolvePolicy(ctx, alice)
	lost("ResolvePolicy", err)
	_, err = s.Application(ctx, authztest.Portal)
	lost("Application", err)
	_, err = s.Profile(ctx, alice.UserID)
	lost("Profile", err)
	_, err = s.Snapshot(ctx)
	lost("Snapshot", err)
	_, err = s.Revision(ctx)
	lost("Revision", err)
	lost("DataLoss", s.DataLoss())
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
