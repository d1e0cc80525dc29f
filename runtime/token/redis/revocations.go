package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// RevocationList keeps one key per revoked token id, <prefix>revoked:<jti>,
// expiring when the token would have expired anyway (SET … PXAT), so the
// list never grows past the live tokens. Keys carry no hash tag: a Cluster
// spreads them.
//
// Data loss. A Redis that comes back empty (restarted without its data,
// FLUSHALL) has forgotten every revocation: answering "not revoked" would
// bring revoked tokens back to life. The list's marker key,
// <prefix>revocations:marker, is written when a server opens the list
// (Initialise) and read with every check; once seen, its absence (or a
// marker no node of this list wrote) is a loss, detected at time T. The
// node then writes a loss marker holding T, so that every node, and every
// node started later, agrees on it. Revocations made after the loss are in
// Redis again; those made before are gone, but only tokens issued before
// the loss can have them: a check of a token issued before T (plus Skew,
// the clock skew between nodes) fails with ErrRevocationsLost — closed —
// until T + Skew + Horizon, when every such token has expired (Horizon is
// the longest token lifetime plus the verifier's leeway). Restoring the
// Redis data (the old marker comes back) ends the loss at once.
type RevocationList struct {
	c      goredis.UniversalClient
	prefix string
	mkey   string
	opt    RevocationOptions
	// markLoss runs markLossScript.
	markLoss *goredis.Script

	known atomic.Pointer[revMarker]
}

// RevocationOptions configure a RevocationList. Zero values take the
// defaults in brackets.
type RevocationOptions struct {
	// Prefix starts every key ["claimsmith:"].
	Prefix string
	// Now is the clock [time.Now].
	Now func() time.Time
	// Horizon is the longest a token stays acceptable after it was issued:
	// the longest configured lifetime plus the verifier's leeway [24h].
	Horizon time.Duration
	// Skew is the clock skew allowed between the nodes that mint tokens
	// and the node that detects a loss [10s].
	Skew time.Duration
	// Logger receives the loss and its end [discard].
	Logger *slog.Logger
}

// ErrRevocationsLost is the check's answer for a token issued before the
// revocation list's Redis lost its data. The errors carrying it also match
// runtime.ErrUnavailable.
var ErrRevocationsLost = errors.New("the revocation list's Redis lost its revocations")

var _ token.RevocationList = (*RevocationList)(nil)

// Marker values: "list:<id>" written by Initialise; "lost:<T unix ms>:<id>:<before>"
// written by the node that detected a loss at T, before being the marker
// the data had before the loss (so that every node recognises a restore).
const (
	revMarkerList = "list:"
	revMarkerLost = "lost:"
)

// revMarker is the marker as this node knows it.
type revMarker struct {
	value string
	// lostAt is the detection time of a loss marker (zero otherwise).
	lostAt time.Time
	// before is the marker the data had before the loss: it coming back
	// is a restore.
	before string
}

// markLossScript sets the marker KEYS[1] to ARGV[2] if it is still ARGV[1]
// ("" for missing) and answers the marker in force.
const markLossScript = `
local cur = redis.call('GET', KEYS[1])
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return cur`

// NewRevocationList uses c with opt.
func NewRevocationList(c goredis.UniversalClient, opt RevocationOptions) *RevocationList {
	if opt.Prefix == "" {
		opt.Prefix = "claimsmith:"
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Horizon <= 0 {
		opt.Horizon = 24 * time.Hour
	}
	if opt.Skew <= 0 {
		opt.Skew = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &RevocationList{c: c, prefix: opt.Prefix + "revoked:", mkey: opt.Prefix + "revocations:marker", opt: opt,
		markLoss: goredis.NewScript(markLossScript)}
}

func newRevMarkerID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// parseRevMarker reads a marker value. A loss marker whose time does not
// parse counts as a loss detected now rather than none.
func parseRevMarker(v string, now time.Time) *revMarker {
	m := &revMarker{value: v}
	if rest, ok := strings.CutPrefix(v, revMarkerLost); ok {
		parts := strings.SplitN(rest, ":", 3)
		m.lostAt = now
		if n, err := strconv.ParseInt(parts[0], 10, 64); err == nil {
			m.lostAt = time.UnixMilli(n)
		}
		if len(parts) == 3 {
			m.before = parts[2]
		}
	}
	return m
}

// Initialise marks the list as initialised unless it already is (SET NX)
// and remembers its marker, so that a loss is detected from now on. A
// server calls it once when it starts; commands do not.
func (l *RevocationList) Initialise(ctx context.Context) error {
	mark, err := l.c.SetArgs(ctx, l.mkey, revMarkerList+newRevMarkerID(), goredis.SetArgs{Mode: "NX", Get: true}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return unavailable("revocation list: initialise", err)
	}
	if mark == "" {
		// Written just now: read it back (SET NX GET answers the old value).
		if mark, err = l.c.Get(ctx, l.mkey).Result(); err != nil {
			return unavailable("revocation list: initialise", err)
		}
	}
	_, err = l.observe(ctx, mark)
	return err
}

// observe checks the marker read from Redis ("" when missing) against the
// one known and answers the loss's detection time while a loss restricts
// checks (zero otherwise). It writes the loss marker when it detects one.
func (l *RevocationList) observe(ctx context.Context, mark string) (time.Time, error) {
	known := l.known.Load()
	switch {
	case known == nil && mark == "":
		// Never initialised: nothing to compare with.
		return time.Time{}, nil
	case known == nil:
		l.known.CompareAndSwap(nil, parseRevMarker(mark, l.opt.Now()))
	case mark == known.value:
	case mark != "" && mark == known.before:
		l.known.Store(parseRevMarker(mark, l.opt.Now()))
		l.opt.Logger.Warn("redis revocation list: the data is back (restored): the loss is over")
	case strings.HasPrefix(mark, revMarkerLost):
		// Another node detected the loss first (or again): its time holds.
		l.known.Store(parseRevMarker(mark, l.opt.Now()))
	default:
		// Missing, or a list marker no node of this list wrote (a server
		// opened the emptied Redis): the revocations are gone.
		at := l.opt.Now()
		lost := revMarkerLost + strconv.FormatInt(at.UnixMilli(), 10) + ":" + newRevMarkerID() + ":" + known.value
		// Only over the marker read: a read that raced with another
		// detection (or a restore) must not declare a second loss.
		cur, err := l.markLoss.Run(ctx, l.c, []string{l.mkey}, mark, lost).Text()
		if err != nil {
			return at, unavailable("revocation list: mark the loss", err)
		}
		if cur != lost {
			return l.observe(ctx, cur)
		}
		l.known.Store(parseRevMarker(lost, at))
		l.opt.Logger.Error("redis revocation list: its Redis lost the revocations: introspection of tokens issued before now fails closed",
			"until", at.Add(l.opt.Skew+l.opt.Horizon).UTC().Format(time.RFC3339))
	}
	return l.known.Load().lostAt, nil
}

// restricted is the error for a token issued at issued (zero: unknown)
// while a loss detected at lostAt holds, nil when the token is not
// affected.
func (l *RevocationList) restricted(lostAt, issued time.Time) error {
	if lostAt.IsZero() {
		return nil
	}
	until := lostAt.Add(l.opt.Skew + l.opt.Horizon)
	if !l.opt.Now().Before(until) {
		return nil
	}
	cut := lostAt.Add(l.opt.Skew)
	if !issued.IsZero() && issued.After(cut) {
		return nil
	}
	return fmt.Errorf("redis revocation list: %w: %w: its Redis lost the revocations made before %s; "+
		"tokens issued before %s cannot be checked until %s, when they have all expired (or restore the Redis data)",
		runtime.ErrUnavailable, ErrRevocationsLost, lostAt.UTC().Format(time.RFC3339), cut.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
}

// Revoke implements token.RevocationList. A token already expired needs no
// entry.
func (l *RevocationList) Revoke(ctx context.Context, jti string, until time.Time) error {
	if jti == "" {
		return fmt.Errorf("%w: revoke: jti is empty", runtime.ErrInvalid)
	}
	if !until.After(l.opt.Now()) {
		return nil
	}
	err := l.c.SetArgs(ctx, l.prefix+jti, until.Unix(), goredis.SetArgs{ExpireAt: until}).Err()
	if err != nil {
		return unavailable("revocation list: revoke", err)
	}
	return nil
}

// IsRevoked implements token.RevocationList for a token whose issue time
// is unknown: while a loss holds it fails closed.
func (l *RevocationList) IsRevoked(ctx context.Context, jti string) (bool, error) {
	return l.IsRevokedIssued(ctx, jti, time.Time{})
}

// IsRevokedIssued implements token.IssuedRevocationList: revoked while the
// stored expiry is ahead of the list's clock (Redis drops the key at that
// time too; comparing here keeps the injected clock authoritative, as in
// the file backend). The entry and the marker are read in one round trip
// (a pipeline: a Cluster keeps them in different slots). An error (Redis
// down, a loss the token may predate) is returned, never "not revoked":
// introspection then fails closed.
func (l *RevocationList) IsRevokedIssued(ctx context.Context, jti string, issued time.Time) (bool, error) {
	var entry *goredis.StringCmd
	var mark *goredis.StringCmd
	_, err := l.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		entry = p.Get(ctx, l.prefix+jti)
		mark = p.Get(ctx, l.mkey)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, unavailable("revocation list: check", err)
	}
	m, err := mark.Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, unavailable("revocation list: check", err)
	}
	lostAt, err := l.observe(ctx, m)
	if err != nil {
		return false, err
	}
	if err := l.restricted(lostAt, issued); err != nil {
		return false, err
	}
	v, err := entry.Int64()
	var bad *strconv.NumError
	switch {
	case errors.Is(err, goredis.Nil):
		return false, nil
	case errors.As(err, &bad):
		// A value that is not a number was not written by Revoke: count it
		// as revoked rather than reactivate a token.
		return true, nil
	case err != nil:
		return false, unavailable("revocation list: check", err)
	}
	return v > l.opt.Now().Unix(), nil
}

// DataLoss checks the marker (readiness probes call it, so a loss is
// detected without introspection traffic) and answers the loss while
// tokens issued before it cannot be checked, nil otherwise. A Redis that
// does not answer is the store checks' business: the loss known so far is
// answered.
func (l *RevocationList) DataLoss(ctx context.Context) error {
	var lostAt time.Time
	if m, err := l.c.Get(ctx, l.mkey).Result(); err == nil || errors.Is(err, goredis.Nil) {
		if lostAt, err = l.observe(ctx, m); err != nil {
			return err
		}
	} else if k := l.known.Load(); k != nil {
		lostAt = k.lostAt
	}
	return l.restricted(lostAt, time.Time{})
}
