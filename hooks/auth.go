package hooks

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
)

// AuthError is a failed caller authentication: a missing or wrong key, a bad
// signature, a stale timestamp or a replayed message id. It matches
// runtime.ErrUnauthenticated, so WriteError answers 401.
type AuthError struct {
	Scheme string // e.g. "standard-webhooks", "bearer", "zitadel-signature"
	Reason string
}

func (e *AuthError) Error() string { return e.Scheme + ": " + e.Reason }

// Is reports runtime.ErrUnauthenticated.
func (e *AuthError) Is(target error) bool { return target == runtime.ErrUnauthenticated }

// AuthFailure returns an *AuthError for scheme with a formatted reason.
func AuthFailure(scheme, format string, args ...any) error {
	return &AuthError{Scheme: scheme, Reason: fmt.Sprintf(format, args...)}
}

// KeySet is a set of static secrets (bearer keys, API keys) compared in
// constant time. Keys are held as SHA-256 digests so a comparison takes the
// same time whatever the length of the presented key.
type KeySet struct {
	digests [][sha256.Size]byte
}

// NewKeySet returns a set of the non-empty keys. An empty set accepts nothing.
func NewKeySet(keys ...string) *KeySet {
	ks := &KeySet{}
	for _, k := range keys {
		if k != "" {
			ks.digests = append(ks.digests, sha256.Sum256([]byte(k)))
		}
	}
	return ks
}

// Len is the number of keys.
func (ks *KeySet) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.digests)
}

// Match reports whether presented is one of the keys. Every key is compared,
// so the time taken does not tell which one matched.
func (ks *KeySet) Match(presented string) bool {
	if ks == nil || presented == "" {
		return false
	}
	d := sha256.Sum256([]byte(presented))
	ok := 0
	for i := range ks.digests {
		ok |= subtle.ConstantTimeCompare(d[:], ks.digests[i][:])
	}
	return ok == 1
}

// BearerToken returns the credential of an "Authorization: Bearer …" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// AdminKeys authenticates admin API keys (runtime/admin's key stores).
type AdminKeys interface {
	Authenticate(ctx context.Context, secret string) (admin.Key, error)
}

// AuthenticateAdmin checks the request's bearer admin key and its scope:
// 401 without a valid key, 403 when the key lacks the scope. The admin API
// (hooks/admin) and POST /api/reload share it.
func AuthenticateAdmin(r *http.Request, keys AdminKeys, scope string) (admin.Key, error) {
	secret, ok := BearerToken(r)
	if !ok {
		return admin.Key{}, AuthFailure("bearer", "an admin key is required (Authorization: Bearer <key>)")
	}
	key, err := keys.Authenticate(r.Context(), secret)
	if err != nil {
		if errors.Is(err, runtime.ErrUnauthenticated) {
			return admin.Key{}, AuthFailure("bearer", "the admin key is not valid")
		}
		return admin.Key{}, err
	}
	if !key.Has(scope) {
		return admin.Key{}, fmt.Errorf("admin key %q lacks the %q scope: %w", key.Name, scope, runtime.ErrForbidden)
	}
	return key, nil
}

// NewTraceID returns a random 128-bit hex id for a request whose caller gave
// none, so a login can be found in the logs.
func NewTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NowFunc returns now, or time.Now when nil: every handler takes an injected
// clock and falls back to the wall clock.
func NowFunc(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
