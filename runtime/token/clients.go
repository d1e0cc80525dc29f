package token

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/claimsmith/claimsmith/runtime"
)

// ClientConfig is one caller allowed to introspect and revoke tokens (a
// resource server). Secrets are configured hashed, never in clear.
type ClientConfig struct {
	ClientID string `yaml:"client_id"`
	// SecretHash is "sha256:<hex>" (for generated high-entropy secrets) or
	// "pbkdf2-sha256:<iterations>:<salt base64url>:<key base64url>" (for
	// chosen ones). `claimsmith token hash-secret` prints either.
	SecretHash string `yaml:"secret_hash"`
	// Live adds the user's current groups/roles/permissions to every answer
	// for this caller, as if it always sent live=true.
	Live bool `yaml:"live"`
	// Audiences, when set, limits the caller to tokens whose aud includes
	// one of them (RFC 7662 §4): a resource server learns nothing about
	// tokens meant for another API.
	Audiences []string `yaml:"audiences"`
}

// Caller is an authenticated introspection/revocation client.
type Caller struct {
	ClientID string
	Live     bool
	// Audiences limits the tokens the caller may introspect (none: any).
	Audiences []string
}

// Entitled reports whether the caller may introspect or revoke a token
// with audience aud: any token without an audience limit, otherwise one
// whose aud includes an allowed audience (RFC 7662 §4, RFC 7009 §2.1).
func (c Caller) Entitled(aud []string) bool {
	return len(c.Audiences) == 0 || slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(c.Audiences, a) })
}

// ErrBadClient is the authentication failure of a caller. It matches
// runtime.ErrUnauthenticated.
var ErrBadClient = fmt.Errorf("%w: client authentication failed", runtime.ErrUnauthenticated)

// Clients authenticates callers against their configured secret hashes.
type Clients struct {
	byID map[string]*client
}

type client struct {
	cfg  ClientConfig
	sha  []byte // sha256 form
	iter int    // pbkdf2 form
	salt []byte
	dk   []byte

	// PBKDF2 is deliberately slow; once a secret verified, its SHA-256 is
	// remembered so the next request costs a hash, not a derivation.
	mu       sync.Mutex
	verified []byte
}

const pbkdf2DefaultIter = 600_000

// NewClients parses the configured clients; a bad entry is an error naming it.
func NewClients(cfgs []ClientConfig) (*Clients, error) {
	c := &Clients{byID: make(map[string]*client, len(cfgs))}
	for i, cfg := range cfgs {
		who := cfg.ClientID
		if who == "" {
			return nil, &runtime.ValidationError{Entity: "introspection client", ID: strconv.Itoa(i), Field: "client_id", Reason: "is required"}
		}
		if _, dup := c.byID[who]; dup {
			return nil, &runtime.ValidationError{Entity: "introspection client", ID: who, Field: "client_id", Reason: "is listed twice"}
		}
		cl := &client{cfg: cfg}
		if err := cl.parseHash(cfg.SecretHash); err != nil {
			return nil, &runtime.ValidationError{Entity: "introspection client", ID: who, Field: "secret_hash", Reason: err.Error()}
		}
		c.byID[who] = cl
	}
	return c, nil
}

func (cl *client) parseHash(h string) error {
	switch {
	case strings.HasPrefix(h, "sha256:"):
		b, err := hex.DecodeString(strings.TrimPrefix(h, "sha256:"))
		if err != nil || len(b) != sha256.Size {
			return fmt.Errorf("sha256: want 64 hex digits")
		}
		cl.sha = b
	case strings.HasPrefix(h, "pbkdf2-sha256:"):
		parts := strings.Split(strings.TrimPrefix(h, "pbkdf2-sha256:"), ":")
		if len(parts) != 3 {
			return fmt.Errorf("pbkdf2-sha256: want <iterations>:<salt>:<key>")
		}
		iter, err := strconv.Atoi(parts[0])
		if err != nil || iter < 10_000 || iter > 10_000_000 {
			return fmt.Errorf("pbkdf2-sha256: iterations must be between 10000 and 10000000")
		}
		salt, err1 := base64.RawURLEncoding.DecodeString(parts[1])
		dk, err2 := base64.RawURLEncoding.DecodeString(parts[2])
		if err1 != nil || err2 != nil || len(salt) < 8 || len(dk) < 16 {
			return fmt.Errorf("pbkdf2-sha256: salt (≥ 8 bytes) and key (≥ 16 bytes) must be unpadded base64url")
		}
		cl.iter, cl.salt, cl.dk = iter, salt, dk
	default:
		return fmt.Errorf("must start with sha256: or pbkdf2-sha256:")
	}
	return nil
}

// Authenticate checks a caller's id and secret in constant time.
func (c *Clients) Authenticate(_ context.Context, id, secret string) (Caller, error) {
	sum := sha256.Sum256([]byte(secret))
	cl, ok := c.byID[id]
	if !ok || secret == "" {
		// Compare anyway so an unknown id costs what a wrong secret costs.
		subtle.ConstantTimeCompare(sum[:], make([]byte, sha256.Size))
		return Caller{}, ErrBadClient
	}
	if cl.sha != nil {
		if subtle.ConstantTimeCompare(sum[:], cl.sha) != 1 {
			return Caller{}, ErrBadClient
		}
		return Caller{ClientID: id, Live: cl.cfg.Live, Audiences: cl.cfg.Audiences}, nil
	}
	cl.mu.Lock()
	known := cl.verified != nil && subtle.ConstantTimeCompare(sum[:], cl.verified) == 1
	cl.mu.Unlock()
	if !known {
		dk, err := pbkdf2.Key(sha256.New, secret, cl.salt, cl.iter, len(cl.dk))
		if err != nil || subtle.ConstantTimeCompare(dk, cl.dk) != 1 {
			return Caller{}, ErrBadClient
		}
		cl.mu.Lock()
		cl.verified = sum[:]
		cl.mu.Unlock()
	}
	return Caller{ClientID: id, Live: cl.cfg.Live, Audiences: cl.cfg.Audiences}, nil
}

// HashSecret returns the configuration form of a secret: PBKDF2-SHA256 with
// a random salt when slow is true, SHA-256 otherwise (fine for secrets of
// 32 random bytes, which `claimsmith token hash-secret --generate` makes).
func HashSecret(secret string, slow bool) (string, error) {
	if secret == "" {
		return "", &runtime.ValidationError{Entity: "secret", Reason: "is empty"}
	}
	if !slow {
		s := sha256.Sum256([]byte(secret))
		return "sha256:" + hex.EncodeToString(s[:]), nil
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	dk, err := pbkdf2.Key(sha256.New, secret, salt, pbkdf2DefaultIter, 32)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pbkdf2-sha256:%d:%s:%s", pbkdf2DefaultIter,
		base64.RawURLEncoding.EncodeToString(salt), base64.RawURLEncoding.EncodeToString(dk)), nil
}

// GenerateSecret returns 32 random bytes, base64url-encoded.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
