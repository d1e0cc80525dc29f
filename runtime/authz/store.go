package authz

import (
	"context"

	"github.com/claimsmith/claimsmith/runtime"
)

// The store is split into the small interfaces each consumer needs (Dex and
// OpenFGA style): the login path depends on PolicyResolver only, the admin API
// on Reader and Writer, the pipeline on runtime.ProfileStore. Every backend
// (memory, file, redis) implements Store and passes authztest's conformance
// suite.

// PolicyResolver answers a login's authorization question. The policy cache is
// a decorator implementing this same interface.
type PolicyResolver interface {
	ResolvePolicy(ctx context.Context, q PolicyQuery) (Policy, error)
}

// ApplicationReader returns a registered application (client_id, name,
// metadata such as required_roles). runtime.ErrNotFound when unknown.
type ApplicationReader interface {
	Application(ctx context.Context, clientID string) (Application, error)
}

// Reader is the admin and CLI read side.
type Reader interface {
	ApplicationReader
	// Revision is the store's current revision; every committed write bumps it.
	Revision(ctx context.Context) (uint64, error)
	// Snapshot returns the current model. Callers must not change it.
	Snapshot(ctx context.Context) (*Model, error)
	RecordReader
}

// Writer changes the model. Apply runs all ops atomically — all or none —
// against the revision the caller read: expected == 0 skips the check,
// otherwise a store at another revision fails with *runtime.ConflictError and
// changes nothing. It returns the new revision. An op that breaks a rule
// (validation, referential integrity) fails with an error matching
// runtime.ErrInvalid, ErrNotFound, ErrExists or ErrInUse, naming what was
// wrong, and changes nothing.
type Writer interface {
	Apply(ctx context.Context, expected uint64, ops ...Op) (uint64, error)
}

// Store is everything a backend provides.
type Store interface {
	PolicyResolver
	Reader
	Writer
	runtime.ProfileStore
	Close() error
}
