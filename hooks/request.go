package hooks

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// DefaultMaxBody is the body limit of a hook request when the handler's
// configuration sets none. A login event with a generous app_metadata is a
// few KiB; Hydra's token hook body with a large consent session stays well
// under it.
const DefaultMaxBody = 256 << 10

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

func authErr(scheme, format string, args ...any) error {
	return &AuthError{Scheme: scheme, Reason: fmt.Sprintf(format, args...)}
}

// requireJSON refuses a request whose Content-Type is not application/json
// (parameters such as charset are allowed: Hydra sends
// "application/json; charset=UTF-8").
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q, want application/json", ErrUnsupportedMediaType, ct)
	}
	return nil
}

// readBody reads at most limit bytes of the request body. A declared
// Content-Length over the limit is refused before anything is read; a body
// that turns out longer fails with *http.MaxBytesError (413 in StatusOf).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: request body of %d bytes exceeds the limit of %d", runtime.ErrTooLarge, r.ContentLength, limit)
	}
	// One allocation of the declared size instead of io.ReadAll's doubling
	// (net/http never gives a handler more than Content-Length bytes);
	// chunked bodies are read whole, within the limit.
	var body []byte
	var err error
	mbr := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength > 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(mbr, body)
	} else {
		body, err = io.ReadAll(mbr)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("request body exceeds the limit of %d bytes: %w", limit, err)
		}
		return nil, fmt.Errorf("%w: reading request body: %v", runtime.ErrInvalid, err)
	}
	return body, nil
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

// bearerToken returns the credential of an "Authorization: Bearer …" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// newTraceID returns a random 128-bit hex id for a request whose caller gave
// none, so a login can be found in the logs.
func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// nowFunc returns now, or time.Now when nil: every handler takes an injected
// clock and falls back to the wall clock.
func nowFunc(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
