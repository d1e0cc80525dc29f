// Package replay is the contract of the stores that remember signed webhook
// message ids against replay. A signed request is accepted once: its id is
// remembered until its timestamp leaves the tolerance window, after which
// the timestamp check refuses a replay by itself.
//
// Backends: hooks/login's ReplayCache keeps ids in the process (the file
// and in-memory stores: one node); runtime/replay/redis keeps them in the
// shared Redis (SET NX with an expiry), so that a request accepted by one
// node is refused by every other node and after a restart. Both pass
// runtime/replay/replaytest's suite.
package replay

import (
	"context"
	"time"
)

// Store remembers message ids.
type Store interface {
	// Remember records id until the time until. fresh is false when id is
	// recorded and not yet expired at now (a replay). An error (the store
	// is unreachable, or full) is never "fresh": the caller refuses the
	// request, fail closed.
	Remember(ctx context.Context, id string, now, until time.Time) (fresh bool, err error)
	// Forget drops id, so that a retry of a request that failed on our side
	// is not refused as a replay. Forgetting an unknown id is not an error.
	Forget(ctx context.Context, id string) error
}
