package token

import (
	"context"
	"time"
)

// RevocationList remembers revoked token ids (jti) until the token would have
// expired anyway; after that the exp check rejects the token by itself.
// Backends: runtime/token/file serves one node; runtime/token/redis shares
// revocations between nodes. Both pass runtime/token/tokentest's suite.
type RevocationList interface {
	Revoke(ctx context.Context, jti string, until time.Time) error
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// IssuedRevocationList is a RevocationList that also takes the token's
// issue time (zero: unknown). One that can lose its entries (Redis: data
// loss) thereby fails closed only for tokens issued before the loss;
// introspection uses it when the list has it.
type IssuedRevocationList interface {
	RevocationList
	IsRevokedIssued(ctx context.Context, jti string, issued time.Time) (bool, error)
}

// KeyStore persists signing keys. Backends: runtime/token/file keeps them in
// the data directory, runtime/token/redis shares them between nodes; both
// pass runtime/token/tokentest's suite. Records are written with MarshalKey
// and read with UnmarshalKey.
type KeyStore interface {
	// LoadKeys returns every stored key, sorted by kid.
	LoadKeys(ctx context.Context) ([]*Key, error)
	// CreateKey stores a new key; runtime.ErrExists if its kid is taken.
	CreateKey(ctx context.Context, k *Key) error
	// DeleteKey removes a key; deleting an unknown kid is not an error.
	DeleteKey(ctx context.Context, kid string) error
}
