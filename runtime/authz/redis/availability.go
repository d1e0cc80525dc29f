package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Availability. Two faults of the store's Redis are told apart:
//
//   - Redis does not answer (down, frozen, unreachable). FailClosed: every
//     read fails with ErrUnavailable/ErrTimeout. LastSnapshot: policies,
//     applications and the extension configuration are answered from the
//     last snapshot (while it is younger than MaxStaleness) and the stored
//     profile is reported missing with runtime.ErrDegraded, so the login
//     goes on without it, flagged; after one failed round trip the store
//     stops waiting for Redis (down) until a round trip succeeds again
//     (the snapshot refresher probes every RefreshInterval).
//   - Redis answers without the store's data (restarted empty, FLUSHALL,
//     lost persistence). An empty store would resolve every user to no
//     roles and every client to no required_roles: logins would fail open.
//     The store's marker key, written when a server opens the store
//     (Initialise) and by every import, is read with the revision on every
//     login, revision read and snapshot; once seen, its absence (or its
//     replacement by a marker no import wrote) is ErrDataLoss: every read
//     fails closed, under either policy, until the marker is back (the
//     data was restored) or an import wrote a new one.

// ErrDataLoss is the store's answer once its Redis lost the store's data.
// The errors that carry it also match runtime.ErrUnavailable.
var ErrDataLoss = errors.New("the store's Redis lost the store's data")

// Marker kinds: who wrote the marker.
const (
	markerOpen   = "open:"
	markerImport = "import:"
)

func newMarker(kind string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return kind + hex.EncodeToString(b)
}

// str is an MGET value as a string ("" for a missing key).
func str(v any) string {
	s, _ := v.(string)
	return s
}

// Initialise marks the store as initialised unless it already is (SET NX)
// and remembers its marker, so that the loss of the data is detected from
// now on. A server calls it once when it opens the store; commands that
// only read do not.
func (s *Store) Initialise(ctx context.Context) error {
	mark, err := s.c.SetArgs(ctx, s.k.marker(), newMarker(markerOpen), goredis.SetArgs{Mode: "NX", Get: true}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return unavailable("initialise", err)
	}
	if mark == "" {
		// Written just now: read it back (SET NX GET answers the old value).
		if mark, err = s.c.Get(ctx, s.k.marker()).Result(); err != nil {
			return unavailable("initialise", err)
		}
	}
	return s.observe(mark, time.Time{})
}

// knownMarker is the marker remembered and when it became known.
type knownMarker struct {
	value string
	since time.Time
}

// adopt remembers the marker this process's import wrote.
func (s *Store) adopt(mark string) {
	s.marker.Store(&knownMarker{value: mark, since: time.Now()})
	s.incarnation.Add(1)
	s.recovered("the store was imported")
}

// observe checks the marker read from Redis ("" when missing) by a round
// trip that started at started against the one remembered, and returns the
// data-loss error while there is one. A read that started before the
// remembered marker became known may predate it (a concurrent import wrote
// it): it proves nothing.
func (s *Store) observe(mark string, started time.Time) error {
	known := s.marker.Load()
	switch {
	case mark == "" && known == nil:
		// Never initialised: an empty store is a new store.
		return nil
	case known != nil && mark != known.value && !started.IsZero() && started.Before(known.since):
		return s.lostErr()
	case mark == "":
		return s.markLost("its marker key is gone (Redis restarted without its data, was flushed, or lost its persistence)")
	case known == nil:
		s.marker.CompareAndSwap(nil, &knownMarker{value: mark, since: time.Now()})
		return s.lostErr()
	case known.value == mark:
		s.recovered("the store's data is back")
		return nil
	case strings.HasPrefix(mark, markerImport):
		s.marker.Store(&knownMarker{value: mark, since: time.Now()})
		s.incarnation.Add(1)
		s.recovered("the store was imported")
		return nil
	default:
		return s.markLost("its marker was replaced by one no import wrote (Redis lost the data and a server opened it empty)")
	}
}

func (s *Store) markLost(why string) error {
	err := fmt.Errorf("redis store: %w: %w: %s; restore the Redis data or import the store again", runtime.ErrUnavailable, ErrDataLoss, why)
	if s.lost.CompareAndSwap(nil, &err) {
		s.incarnation.Add(1)
		s.log.Error("redis store: data loss detected: failing closed", "reason", why)
	}
	return *s.lost.Load()
}

func (s *Store) recovered(why string) {
	if s.lost.Swap(nil) != nil {
		s.incarnation.Add(1)
		s.log.Warn("redis store: data loss cleared", "reason", why)
	}
}

func (s *Store) lostErr() error {
	if p := s.lost.Load(); p != nil {
		return *p
	}
	return nil
}

// Epoch names the incarnation of the store's data as this store last saw
// it: the marker, and a count of its changes, losses and recoveries ("" before
// a marker was seen). Revisions count within one epoch only — a store
// re-created after a loss (re-imported, restored from a backup) reuses
// revision numbers — so the policy cache keys its entries by epoch and
// revision. It does no I/O: every read of the store refreshes it.
func (s *Store) Epoch() string {
	k := s.marker.Load()
	if k == nil {
		return ""
	}
	return k.value + "/" + strconv.FormatUint(s.incarnation.Load(), 10)
}

// DataLoss reports the data-loss error while there is one (nil otherwise):
// readiness fails on it.
func (s *Store) DataLoss() error { return s.lostErr() }

// sawRevision records a revision read from Redis; a snapshot older than it
// may no longer answer (fallback) and the refresher is woken.
func (s *Store) sawRevision(rev uint64) {
	for {
		cur := s.latest.Load()
		if rev <= cur || s.latest.CompareAndSwap(cur, rev) {
			break
		}
	}
	if s.opt.OnUnavailable != LastSnapshot {
		return
	}
	s.snapMu.Lock()
	stale := s.snap == nil || s.snap.Revision() < rev
	s.snapMu.Unlock()
	if stale {
		select {
		case s.nudge <- struct{}{}:
		default:
		}
	}
}

// failed records a round trip that Redis did not answer.
func (s *Store) failed(err error) {
	if err != nil && !errors.Is(err, goredis.Nil) && !errors.Is(err, context.Canceled) {
		s.down.Store(true)
	}
}

// answered records a round trip that Redis answered.
func (s *Store) answered() { s.down.Store(false) }

// standIn is the snapshot that answers at once, without asking Redis: set
// while Redis is known to be failing and LastSnapshot may answer.
func (s *Store) standIn() *authz.Model {
	if !s.down.Load() {
		return nil
	}
	return s.fallback()
}

// probeContext bounds a login-path read when the snapshot may answer
// instead: ProbeTimeout, and at most three quarters of the caller's
// budget, so the fallback still comes before the caller's deadline
// (go-redis' retries against a dead server take about 1.7 s).
func (s *Store) probeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.fallback() == nil {
		return ctx, func() {}
	}
	until := time.Now().Add(s.opt.ProbeTimeout)
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Now().Add(time.Until(dl) * 3 / 4); d.Before(until) {
			until = d
		}
	}
	return context.WithDeadline(ctx, until)
}

// Degradable reports whether err is a failure the LastSnapshot policy
// answers around (Redis not answering), as opposed to data loss or a bad
// request: callers on the login path (the profile patch) then go on
// without the store instead of failing the login.
func (s *Store) Degradable(err error) bool {
	if s.opt.OnUnavailable != LastSnapshot || err == nil || errors.Is(err, ErrDataLoss) {
		return false
	}
	return errors.Is(err, runtime.ErrUnavailable) || errors.Is(err, runtime.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// Down reports whether the last round trip to Redis failed and the
// snapshot is answering instead (LastSnapshot): a login-path write then
// does not wait for Redis.
func (s *Store) Down() bool { return s.standIn() != nil }

// ProbeContext is probeContext for callers outside the store on the login
// path (the profile patch): bounded only while the snapshot may answer.
func (s *Store) ProbeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return s.probeContext(ctx)
}

// Serving reports whether logins can be answered: nil while Redis answers
// with the store's data, or while LastSnapshot's snapshot may stand in
// for it; the data-loss error, or the outage, otherwise. Readiness must
// never say usable while logins fail.
func (s *Store) Serving(ctx context.Context) error {
	_, err := s.Revision(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrDataLoss):
		return err
	case s.fallback() != nil:
		return nil
	case s.opt.OnUnavailable == LastSnapshot:
		return fmt.Errorf("%w; no snapshot younger than max_staleness (%s) to answer from", err, s.opt.MaxStaleness)
	}
	return err
}

// SnapshotBehind reports, with LastSnapshot, that the snapshot is older
// than a revision this store already read (it catches up within moments
// while Redis answers): a Redis failure now would fail logins instead of
// degrading them. Readiness shows it as degraded; nil otherwise.
func (s *Store) SnapshotBehind() error {
	if s.opt.OnUnavailable != LastSnapshot {
		return nil
	}
	s.snapMu.Lock()
	m := s.snap
	s.snapMu.Unlock()
	latest := s.latest.Load()
	if m == nil || m.Revision() < latest {
		have := "none"
		if m != nil {
			have = fmt.Sprint(m.Revision())
		}
		return fmt.Errorf("redis store: the last snapshot (revision %s) is behind revision %d: it cannot stand in for Redis yet", have, latest)
	}
	return nil
}

// snapshotApplication answers Application from a snapshot.
func snapshotApplication(m *authz.Model, clientID string) (authz.Application, error) {
	a, ok := m.Application(clientID)
	if !ok {
		return authz.Application{}, fmt.Errorf("application %q: %w", clientID, runtime.ErrNotFound)
	}
	return a, nil
}

// profileUnavailable is Profile's answer when Redis did not answer:
// LastSnapshot lets the login go on without the stored profile
// (runtime.ErrDegraded, flagged in the answer); FailClosed fails it.
func (s *Store) profileUnavailable(userID string, err error) (runtime.Profile, error) {
	if s.Degradable(err) {
		return runtime.Profile{UserID: userID}, fmt.Errorf("%w: %w", runtime.ErrDegraded, err)
	}
	return runtime.Profile{}, err
}

// readProfile reads a profile and the store's marker in one round trip
// (bounded while the snapshot may answer): raw is nil when the user has
// no stored profile.
func (s *Store) readProfile(ctx context.Context, userID string) (raw []byte, err error) {
	if s.standIn() != nil {
		return nil, s.profileDown()
	}
	ctx, cancel := s.probeContext(ctx)
	defer cancel()
	started := time.Now()
	vals, err := s.c.MGet(ctx, s.k.profile(userID), s.k.marker()).Result()
	if err != nil {
		s.failed(err)
		return nil, unavailable("read profile", err)
	}
	s.answered()
	if err := s.observe(str(vals[1]), started); err != nil {
		return nil, err
	}
	if v, ok := vals[0].(string); ok {
		return []byte(v), nil
	}
	return nil, nil
}

func (s *Store) profileDown() error {
	return fmt.Errorf("redis store: read profile: %w: Redis failed its last round trip", runtime.ErrUnavailable)
}
