package setup

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The store's availability policy on the login path (store.on_unavailable,
// see the README's "Failure modes"): the Redis store answers policies,
// applications and the configuration from its last snapshot and reports the
// stored profile missing (runtime.ErrDegraded); the metadata patch is
// dropped, not queued (a queue would be lost with the process and would
// replay patches computed without the stored profile over whatever other
// nodes wrote meanwhile); the answer still carries the patch for IdPs that
// keep their own user store, and names both in "degraded". Data loss is no
// outage: it fails closed under either policy.

// degrader is a store with an availability policy (the Redis store).
type degrader interface {
	// Down: Redis failed its last round trip and the snapshot answers.
	Down() bool
	// Degradable: err is an outage the policy answers around.
	Degradable(err error) bool
	// ProbeContext bounds a login-path call while the snapshot may answer.
	ProbeContext(ctx context.Context) (context.Context, context.CancelFunc)
}

// serving is a store that says whether logins can be answered and whether
// it lost its data (the Redis store).
type serving interface {
	Serving(ctx context.Context) error
}

// snapshotter is a store whose snapshot may stand in for it (the Redis
// store with last_snapshot).
type snapshotter interface {
	SnapshotBehind() error
}

// initialiser is a store that marks itself initialised so that the loss
// of its data is detected (the Redis store).
type initialiser interface {
	Initialise(ctx context.Context) error
}

// dataLosser is a store that remembers whether its data was lost (the
// Redis key store).
type dataLosser interface {
	DataLoss() error
}

// revocationLoser is a revocation list that detects the loss of its
// entries (the Redis one).
type revocationLoser interface {
	Initialise(ctx context.Context) error
	DataLoss(ctx context.Context) error
}

// revocationsCheck is the readiness check of the revocation list: it
// degrades while tokens issued before a loss of its Redis cannot be checked
// (introspection of those answers 503; logins are not affected).
func revocationsCheck(l revocationLoser) hooks.ReadyCheck {
	return hooks.ReadyCheck{Name: "revocations", Degrades: true, Check: func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, StoreCheckTimeout)
		defer cancel()
		return l.DataLoss(ctx)
	}}
}

// degradedCounters count logins answered without a store operation,
// claimsmith_store_degraded_total{op}.
type degradedCounters struct {
	profile, patch prometheus.Counter
}

func newDegradedCounters(reg prometheus.Registerer) (degradedCounters, error) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "claimsmith_store_degraded_total",
		Help: "Logins answered without a store operation by store.on_unavailable (op: profile = without the stored profile, patch_profile = metadata patch dropped).",
	}, []string{"op"})
	if err := reg.Register(v); err != nil {
		return degradedCounters{}, err
	}
	return degradedCounters{profile: v.WithLabelValues("profile"), patch: v.WithLabelValues("patch_profile")}, nil
}

// patchProfile writes a login's metadata patch by the store's policy: while
// the snapshot answers for a failed Redis the patch is dropped at once;
// otherwise it is written within the probe bound and dropped when Redis
// fails meanwhile. Dropping answers runtime.ErrDegraded (the pipeline flags
// the answer).
func patchProfile(ctx context.Context, st runtime.ProfileStore, userID string, app, user map[string]any) (runtime.Profile, error) {
	d, ok := st.(degrader)
	if !ok {
		return st.PatchProfile(ctx, userID, app, user)
	}
	if d.Down() {
		return runtime.Profile{}, fmt.Errorf("patch profile: %w: %w: the store's Redis is failing", runtime.ErrDegraded, runtime.ErrUnavailable)
	}
	pctx, cancel := d.ProbeContext(ctx)
	defer cancel()
	p, err := st.PatchProfile(pctx, userID, app, user)
	if err != nil && ctx.Err() == nil && d.Degradable(err) {
		return runtime.Profile{}, fmt.Errorf("%w: %w", runtime.ErrDegraded, err)
	}
	return p, err
}

// storeChecks are the store's readiness checks. "store" asks whether the
// store answers; with last_snapshot an outage only degrades it. "store_logins"
// (a store that knows) fails whenever logins cannot be answered: data loss
// under either policy, or an outage with no snapshot that may answer.
// "store_snapshot" (last_snapshot) degrades while the snapshot lags behind
// the store, when an outage would fail logins rather than degrade them.
func (b *Backends) storeChecks(st authz.Reader) []hooks.ReadyCheck {
	checks := []hooks.ReadyCheck{b.storeCheck(st)}
	if sv, ok := st.(serving); ok {
		checks = append(checks, hooks.ReadyCheck{Name: "store_logins", Check: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, StoreCheckTimeout)
			defer cancel()
			return sv.Serving(ctx)
		}})
	}
	if sn, ok := st.(snapshotter); ok && b.kind.degrades(b) {
		checks = append(checks, hooks.ReadyCheck{Name: "store_snapshot", Degrades: true,
			Check: func(context.Context) error { return sn.SnapshotBehind() }})
	}
	return checks
}

// keysCheck is the readiness check of the signing keys: a key that signs,
// and a key store that did not lose its keys (a new key is then never
// generated silently; see runtime/token/redis).
func keysCheck(ts *TokenService, store any) hooks.ReadyCheck {
	return hooks.ReadyCheck{Name: "keys", Check: func(context.Context) error {
		if dl, ok := store.(dataLosser); ok {
			if err := dl.DataLoss(); err != nil {
				return err
			}
		}
		_, err := ts.Keys.Active()
		return err
	}}
}

// isDegraded reports whether err is a degraded answer (counted apart from
// failures).
func isDegraded(err error) bool { return errors.Is(err, runtime.ErrDegraded) }
