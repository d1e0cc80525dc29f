// Package redis is the shared authorization store for several claimsmith
// nodes, on Redis through go-redis' universal client (single node, Sentinel
// or Cluster). Every entity is its own record with index sets beside it (user
// → groups, group → parents, role → permissions, name indexes, …), so a
// login reads only that user's memberships, in one round trip (a Lua
// script), and a write touches only the records it changes.
//
// Writes run the ops of runtime/authz — the same code the memory and file
// stores run, so validation, referential rules and errors are identical — on
// a partial document holding exactly the records the ops can observe (found
// through the indexes), then write the records that changed and the index
// differences in one MULTI/EXEC guarded by WATCH on the revision key: zero
// lost updates with any number of writers in any number of processes. An
// import (ReplaceDocument) writes a new generation of keys with pipelined
// batches and switches to it atomically.
//
// Persistence is the operator's job: run the store's Redis with AOF
// (appendonly yes, appendfsync everysec or always). See the README.
package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Behaviour of ResolvePolicy when Redis does not answer.
const (
	// FailClosed returns an error matching runtime.ErrUnavailable: the
	// authorization rule's on_error decides (deny by default).
	FailClosed = "fail_closed"
	// LastSnapshot answers from the last model read while Redis worked, as
	// long as it was confirmed current within MaxStaleness.
	LastSnapshot = "last_snapshot"
)

// Options configure a Store.
type Options struct {
	// Prefix starts every key ["claimsmith:"].
	Prefix string
	// Tag is the Cluster hash tag of the store's keys ["authz"]; stores
	// with different tags are independent (and may sit on different nodes).
	Tag string
	// ProfileLimit caps each profile object in bytes [authz.DefaultProfileLimit].
	ProfileLimit int
	// OnUnavailable is FailClosed (default) or LastSnapshot.
	OnUnavailable string
	// MaxStaleness bounds how old the LastSnapshot answer may be [5m].
	MaxStaleness time.Duration
	// RefreshInterval is how often LastSnapshot checks the revision and
	// reloads the snapshot when it changed [2s]; it is also how soon a
	// store answering from the snapshot notices that Redis is back.
	RefreshInterval time.Duration
	// ProbeTimeout bounds each login-path read while LastSnapshot has a
	// snapshot to answer from [1s]: a frozen Redis must not hold a login
	// past the IdP's own timeout.
	ProbeTimeout time.Duration
	// BatchSize is the number of commands per pipelined batch of an
	// import [5000].
	BatchSize int
	// Logger [discard].
	Logger *slog.Logger
	// Now is the clock [time.Now].
	Now func() time.Time
}

// Store is the Redis authz.Store.
type Store struct {
	c   goredis.UniversalClient
	k   keys
	opt Options
	log *slog.Logger

	login *goredis.Script
	// casProfile is the compare-and-set of a changed profile (profiles.go).
	casProfile *goredis.Script

	// structure is the in-process snapshot of everything resolution needs
	// except memberships, rebuilt once per structure version.
	structure atomic.Pointer[structure]
	sf        singleflight.Group

	// snap caches the last Snapshot by revision (admin reads, LastSnapshot).
	snapMu sync.Mutex
	snap   *authz.Model
	// confirmed is when snap was last known to be the store's current
	// revision (unix ns).
	confirmed atomic.Int64

	// down is set by a failed Redis round trip and cleared by a good one:
	// while it is set and the snapshot may answer, login-path reads answer
	// from it without waiting for Redis (availability.go).
	down atomic.Bool
	// latest is the newest revision this store read from Redis; nudge
	// wakes the refresher when the snapshot is older (availability.go).
	latest atomic.Uint64
	nudge  chan struct{}
	// marker is the store's marker as first seen, lost the data-loss
	// error while the marker is missing or replaced (availability.go).
	marker atomic.Pointer[knownMarker]
	lost   atomic.Pointer[error]
	// incarnation counts this store's changes of marker and its losses
	// and recoveries: part of Epoch.
	incarnation atomic.Uint64

	stop context.CancelFunc
	wg   sync.WaitGroup
}

var (
	_ authz.Store         = (*Store)(nil)
	_ authz.ProfileLister = (*Store)(nil)
)

//go:embed login.lua
var loginLua string

// New returns a store on client c. It does not take ownership of c (Close
// does not close it). With LastSnapshot it loads the snapshot and starts
// refreshing it; otherwise it does no I/O.
func New(ctx context.Context, c goredis.UniversalClient, opt Options) (*Store, error) {
	if c == nil {
		return nil, &runtime.ValidationError{Entity: "redis store", Field: "client", Reason: "is missing"}
	}
	if opt.Prefix == "" {
		opt.Prefix = "claimsmith:"
	}
	if opt.Tag == "" {
		opt.Tag = "authz"
	}
	switch opt.OnUnavailable {
	case "":
		opt.OnUnavailable = FailClosed
	case FailClosed, LastSnapshot:
	default:
		return nil, &runtime.ValidationError{Entity: "redis store", Field: "on_unavailable",
			Reason: fmt.Sprintf("is %q, must be %q or %q", opt.OnUnavailable, FailClosed, LastSnapshot)}
	}
	if opt.MaxStaleness <= 0 {
		opt.MaxStaleness = 5 * time.Minute
	}
	if opt.RefreshInterval <= 0 {
		opt.RefreshInterval = 2 * time.Second
	}
	if opt.ProbeTimeout <= 0 {
		opt.ProbeTimeout = time.Second
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 5000
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Store{c: c, k: newKeys(opt.Prefix, opt.Tag), opt: opt, log: opt.Logger, login: goredis.NewScript(loginLua),
		casProfile: goredis.NewScript(casProfileLua), nudge: make(chan struct{}, 1)}
	if opt.OnUnavailable == LastSnapshot {
		if _, err := s.snapshot(ctx); err != nil {
			return nil, fmt.Errorf("redis store: initial snapshot: %w", err)
		}
		bg, stop := context.WithCancel(context.WithoutCancel(ctx))
		s.stop = stop
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.refresh(bg) }()
	}
	return s, nil
}

// Close stops the snapshot refresher and waits for the deletion of old
// generations an import left behind (a command that imports and exits must
// not leave them in Redis). The client stays open.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	return nil
}

// unavailable wraps a Redis failure: ErrTimeout for deadlines, else
// ErrUnavailable, both naming the operation.
func unavailable(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("redis store: %s: %w: %w", op, runtime.ErrTimeout, err)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("redis store: %s: %w: %w", op, runtime.ErrTimeout, err)
	}
	return fmt.Errorf("redis store: %s: %w: %w", op, runtime.ErrUnavailable, err)
}

// ResolvePolicy implements authz.PolicyResolver. One EVALSHA reads the
// revision, the structure version and the user's direct groups and roles;
// the rest (closures, mappings, roles, permissions) comes from the
// in-process structure snapshot, rebuilt once per structure version. When
// Redis fails, OnUnavailable decides.
func (s *Store) ResolvePolicy(ctx context.Context, q authz.PolicyQuery) (authz.Policy, error) {
	if m := s.standIn(); m != nil {
		return m.Resolve(q), nil
	}
	for attempt := 0; ; attempt++ {
		started := time.Now()
		res, err := s.runLogin(ctx, q.UserID)
		if err != nil {
			s.failed(err)
			if m := s.fallback(); m != nil && ctx.Err() == nil {
				s.log.Warn("redis store unavailable: answering from the last snapshot", "revision", m.Revision(), "err", err)
				return m.Resolve(q), nil
			}
			return authz.Policy{}, unavailable("resolve policy", err)
		}
		s.answered()
		lr, err := decodeLogin(res)
		if err != nil {
			return authz.Policy{}, fmt.Errorf("redis store: resolve policy: %w", err)
		}
		if err := s.observe(lr.marker, started); err != nil {
			return authz.Policy{}, err
		}
		st := s.structure.Load()
		if st == nil || st.version != lr.structure || st.gen != lr.gen {
			if st, err = s.loadStructure(ctx); err != nil {
				return authz.Policy{}, err
			}
			if (st.version != lr.structure || st.gen != lr.gen) && attempt < 5 {
				// The structure moved between the two reads: read the
				// memberships again so both halves are of one version.
				continue
			}
		}
		p := st.model.ResolveMembers(q, lr.groups, lr.roles)
		p.Revision = lr.rev
		s.sawRevision(lr.rev)
		return p, nil
	}
}

// runLogin runs the login script. With a snapshot to fall back on, it keeps
// a quarter of the caller's budget in reserve: go-redis' retries against a
// dead server (dial retries, then command retries with backoff: about 1.7 s
// with the default client) would otherwise spend all of it, and the
// fallback would come after the login's deadline.
func (s *Store) runLogin(ctx context.Context, userID string) ([]any, error) {
	ctx, cancel := s.probeContext(ctx)
	defer cancel()
	return s.login.Run(ctx, s.c, []string{s.k.rev()}, s.k.base, userID).Slice()
}

// loginRead is the login script's answer.
type loginRead struct {
	rev, gen      uint64
	structure     string
	groups, roles []string
	marker        string // "" when the key is missing
}

// decodeLogin checks the script's {rev, srev, gen, groups, roles, marker}.
func decodeLogin(res []any) (loginRead, error) {
	var lr loginRead
	if len(res) != 6 {
		return lr, fmt.Errorf("login script returned %d values, want 6", len(res))
	}
	lr.marker, _ = res[5].(string)
	var err error
	rs, _ := res[0].(string)
	if lr.rev, err = strconv.ParseUint(rs, 10, 64); err != nil {
		return lr, fmt.Errorf("login script: bad revision %v", res[0])
	}
	lr.structure, _ = res[1].(string)
	gs, _ := res[2].(string)
	if lr.gen, err = strconv.ParseUint(gs, 10, 64); err != nil {
		return lr, fmt.Errorf("login script: bad generation %v", res[2])
	}
	for i, dst := range []*[]string{&lr.groups, &lr.roles} {
		list, ok := res[3+i].([]any)
		if !ok {
			return lr, fmt.Errorf("login script: value %d is %T, want a list", 3+i, res[3+i])
		}
		out := make([]string, len(list))
		for j, v := range list {
			if out[j], ok = v.(string); !ok {
				return lr, fmt.Errorf("login script: value %d[%d] is %T, want a string", 3+i, j, v)
			}
		}
		*dst = out
	}
	return lr, nil
}

// fallback returns the snapshot LastSnapshot may answer from, or nil.
func (s *Store) fallback() *authz.Model {
	if s.opt.OnUnavailable != LastSnapshot {
		return nil
	}
	if s.lost.Load() != nil {
		// Data loss fails closed: the snapshot would answer for a store
		// that no longer exists.
		return nil
	}
	s.snapMu.Lock()
	m := s.snap
	s.snapMu.Unlock()
	if m == nil || s.opt.Now().UnixNano()-s.confirmed.Load() > s.opt.MaxStaleness.Nanoseconds() {
		return nil
	}
	if m.Revision() < s.latest.Load() {
		// This node already answered from a newer revision: the snapshot
		// could allow what the store no longer allows (a role just
		// revoked, a required_roles just set). The refresher was nudged
		// and catches up while Redis answers.
		return nil
	}
	return m
}

// refresh keeps the LastSnapshot model current: every RefreshInterval,
// and at once (at most every RefreshInterval/10) when a read saw a newer
// revision than the snapshot's.
func (s *Store) refresh(ctx context.Context) {
	t := time.NewTicker(s.opt.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.nudge:
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.opt.RefreshInterval / 10):
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := s.snapshot(rctx); err != nil && ctx.Err() == nil {
			s.log.Warn("redis store: refresh snapshot", "err", err)
		}
		cancel()
	}
}

// Revision implements authz.Reader. It also checks the store's marker:
// a Redis that lost the store's data answers ErrDataLoss, never revision 0.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	started := time.Now()
	vals, err := s.c.MGet(ctx, s.k.rev(), s.k.marker()).Result()
	if err != nil {
		s.failed(err)
		return 0, unavailable("read revision", err)
	}
	s.answered()
	if err := s.observe(str(vals[1]), started); err != nil {
		return 0, err
	}
	rs := str(vals[0])
	if rs == "" {
		return 0, nil
	}
	rev, err := strconv.ParseUint(rs, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis store: revision %q is not a number", rs)
	}
	s.sawRevision(rev)
	return rev, nil
}

// Application implements authz.ApplicationReader: the generation and the
// marker, then one HGET. LastSnapshot answers from the snapshot while
// Redis fails; a store that lost its data fails, never "not found" (a
// client's required_roles would silently vanish).
func (s *Store) Application(ctx context.Context, clientID string) (authz.Application, error) {
	if m := s.standIn(); m != nil {
		return snapshotApplication(m, clientID)
	}
	a, err := s.readApplication(ctx, clientID)
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		if m := s.fallback(); m != nil && ctx.Err() == nil && !errors.Is(err, ErrDataLoss) {
			return snapshotApplication(m, clientID)
		}
	}
	return a, err
}

func (s *Store) readApplication(ctx context.Context, clientID string) (authz.Application, error) {
	ctx, cancel := s.probeContext(ctx)
	defer cancel()
	started := time.Now()
	vals, err := s.c.MGet(ctx, s.k.gen(), s.k.marker()).Result()
	if err != nil {
		s.failed(err)
		return authz.Application{}, unavailable("read generation", err)
	}
	s.answered()
	if err := s.observe(str(vals[1]), started); err != nil {
		return authz.Application{}, err
	}
	var gen uint64
	if gs := str(vals[0]); gs != "" {
		if gen, err = strconv.ParseUint(gs, 10, 64); err != nil {
			return authz.Application{}, fmt.Errorf("redis store: generation %q is not a number", gs)
		}
	}
	b, err := s.c.HGet(ctx, s.k.ns(gen).apps(), clientID).Bytes()
	if errors.Is(err, goredis.Nil) {
		return authz.Application{}, fmt.Errorf("application %q: %w", clientID, runtime.ErrNotFound)
	}
	if err != nil {
		s.failed(err)
		return authz.Application{}, unavailable("read application", err)
	}
	var a authz.Application
	if err := decodeRecord(b, &a, "application", clientID); err != nil {
		return authz.Application{}, err
	}
	return a, nil
}

type getter interface {
	Get(ctx context.Context, key string) *goredis.StringCmd
}

func (s *Store) generation(ctx context.Context, c getter) (uint64, error) {
	gen, err := c.Get(ctx, s.k.gen()).Uint64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable("read generation", err)
	}
	return gen, nil
}
