// Package admin is the admin application service (Service: audited writes
// with optimistic retry, and the list queries) and what it needs besides the
// authorization store: API keys (stored hashed, shown once, scoped) and the
// audit log of every write. The interfaces live here; the backends are
// runtime/admin/file and runtime/admin/redis, both held to the conformance
// suite in runtime/admin/admintest.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/claimsmith/claimsmith/runtime"
)

// Scopes an admin key may carry.
const (
	ScopeRead   = "read:authz"  // read groups, roles, permissions, applications, users, audit
	ScopeWrite  = "write:authz" // change them
	ScopeImport = "import"      // replace the whole document (POST /api/import)
	ScopeExport = "export"      // download the whole document (GET /api/export)
)

// AllScopes lists the scopes in canonical order.
var allScopes = []string{ScopeRead, ScopeWrite, ScopeImport, ScopeExport}

// AllScopes returns every scope, in canonical order.
func AllScopes() []string { return slices.Clone(allScopes) }

// ParseScopes turns a comma-separated list into canonical scope names. The
// CLI shorthands "read" and "write" stand for read:authz and write:authz;
// "all" grants every scope. Unknown names are an error naming the value.
func ParseScopes(s string) ([]string, error) {
	var out []string
	for _, raw := range strings.Split(s, ",") {
		v := strings.TrimSpace(raw)
		switch v {
		case "":
			continue
		case "read", ScopeRead:
			out = append(out, ScopeRead)
		case "write", ScopeWrite:
			out = append(out, ScopeWrite)
		case ScopeImport, ScopeExport:
			out = append(out, v)
		case "all":
			out = append(out, allScopes...)
		default:
			return nil, &runtime.ValidationError{Entity: "admin key", Field: "scopes",
				Reason: fmt.Sprintf("unknown scope %q (use read:authz, write:authz, import, export; or read, write, all)", v)}
		}
	}
	if len(out) == 0 {
		return nil, &runtime.ValidationError{Entity: "admin key", Field: "scopes", Reason: "is empty: give at least one scope"}
	}
	return canonicalScopes(out), nil
}

// canonicalScopes de-duplicates and orders scopes as allScopes does.
func canonicalScopes(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range allScopes {
		if slices.Contains(in, s) {
			out = append(out, s)
		}
	}
	return out
}

// Key is an admin API key as stored: never the secret, only its digest.
type Key struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Scopes  []string  `json:"scopes"`
	Created time.Time `json:"created"`
	// Hash is the hex SHA-256 of the secret. A secret carries 256 random bits,
	// so a plain digest cannot be brute-forced; a slow KDF would only cost CPU
	// on every admin request.
	Hash string `json:"hash"`
}

// Has reports whether the key carries scope.
func (k Key) Has(scope string) bool { return slices.Contains(k.Scopes, scope) }

// KeyStore manages admin keys. Authenticate is the request path; the rest
// serves the CLI.
type KeyStore interface {
	// Create stores a new key and returns it with its secret, which is shown
	// once and never stored. A name already used fails with runtime.ErrExists.
	Create(ctx context.Context, name string, scopes []string) (Key, string, error)
	// Authenticate returns the key whose secret is presented, or an error
	// matching runtime.ErrUnauthenticated.
	Authenticate(ctx context.Context, secret string) (Key, error)
	// List returns every key (without secrets) in creation order.
	List(ctx context.Context) ([]Key, error)
	// Revoke deletes a key by id or name; runtime.ErrNotFound when unknown.
	Revoke(ctx context.Context, idOrName string) error
}

// secretPrefix marks claimsmith admin keys so secret scanners and humans
// recognise one.
const secretPrefix = "csk_"

// newSecret returns a key id and a secret "csk_<id>_<43 chars of base64url>".
func newSecret() (id, secret string) {
	var idb [6]byte
	var sb [32]byte
	_, _ = rand.Read(idb[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	_, _ = rand.Read(sb[:])
	id = hex.EncodeToString(idb[:])
	return id, secretPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(sb[:])
}

// hashSecret is the stored digest of a secret.
func hashSecret(secret string) string {
	d := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(d[:])
}

// MatchKey finds the key whose digest equals the presented secret's. Every
// key is compared in constant time, so timing tells nothing about which
// digest came close.
func MatchKey(keys []Key, secret string) (Key, bool) {
	if secret == "" {
		return Key{}, false
	}
	d := sha256.Sum256([]byte(secret))
	found := -1
	for i := range keys {
		want, err := hex.DecodeString(keys[i].Hash)
		if err != nil || len(want) != sha256.Size {
			continue
		}
		if subtle.ConstantTimeCompare(d[:], want) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Key{}, false
	}
	return keys[found], true
}

// NewKey validates a new key's name and scopes and makes the key and its
// secret (shown once, never stored): what every KeyStore's Create does before
// storing it.
func NewKey(name string, scopes []string, now time.Time) (Key, string, error) {
	if err := ValidateKeyName(name); err != nil {
		return Key{}, "", err
	}
	for _, sc := range scopes {
		if !slices.Contains(allScopes, sc) {
			return Key{}, "", &runtime.ValidationError{Entity: "admin key", ID: name, Field: "scopes", Reason: fmt.Sprintf("unknown scope %q", sc)}
		}
	}
	scopes = canonicalScopes(scopes)
	if len(scopes) == 0 {
		return Key{}, "", &runtime.ValidationError{Entity: "admin key", ID: name, Field: "scopes", Reason: "is empty: give at least one scope"}
	}
	id, secret := newSecret()
	return Key{ID: id, Name: name, Scopes: scopes, Created: now.UTC().Truncate(time.Second), Hash: hashSecret(secret)}, secret, nil
}

// MaxKeyName bounds a key's name.
const MaxKeyName = 100

// ValidateKeyName checks a key name: 1–100 printable characters, no spaces
// at either end (it appears in audit records and logs).
func ValidateKeyName(name string) error {
	bad := func(reason string) error {
		return &runtime.ValidationError{Entity: "admin key", Field: "name", Reason: reason}
	}
	if name == "" {
		return bad("is required")
	}
	if n := len([]rune(name)); n > MaxKeyName {
		return bad(fmt.Sprintf("has %d characters, at most %d", n, MaxKeyName))
	}
	if strings.TrimSpace(name) != name {
		return bad("starts or ends with white space")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return bad(fmt.Sprintf("contains the non-printable character %U", r))
		}
	}
	return nil
}
