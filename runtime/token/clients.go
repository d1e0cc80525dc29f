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
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// ErrBusy is returned, without hashing, when too many PBKDF2 verifications
// are running and waiting: unauthenticated callers must not take the CPU
// the logins need. It matches runtime.ErrUnavailable (503).
var ErrBusy = fmt.Errorf("%w: too many client authentications in progress", runtime.ErrUnavailable)

// Hasher derives a PBKDF2-SHA256 key. ClientsOptions.Hasher replaces it in
// tests to count derivations.
type Hasher func(secret string, salt []byte, iterations, keyLen int) ([]byte, error)

func pbkdf2SHA256(secret string, salt []byte, iterations, keyLen int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, secret, salt, iterations, keyLen)
}

// ClientsOptions tune the defences of PBKDF2 client authentication. Zero
// values take the defaults.
type ClientsOptions struct {
	// MaxConcurrent bounds the PBKDF2 derivations running at once
	// (default: a quarter of GOMAXPROCS, at least 1).
	MaxConcurrent int
	// MaxWaiting bounds the requests waiting for a derivation slot; beyond
	// it a request gets ErrBusy at once (default 32).
	MaxWaiting int
	// CacheTTL is how long a verified secret is accepted for a hash
	// instead of a derivation (default 5m).
	CacheTTL time.Duration
	// BackoffAfter consecutive failures of one client id start a back-off
	// (default 5): further attempts fail at once, without hashing, for
	// BackoffBase doubling per further failure up to BackoffMax (defaults
	// 1s and 5m). A secret still cached as verified passes regardless, so
	// an attacker cannot lock the real client out.
	BackoffAfter int
	BackoffBase  time.Duration
	BackoffMax   time.Duration
	// Now is the clock (default time.Now); Hasher the derivation (default
	// PBKDF2-SHA256).
	Now    func() time.Time
	Hasher Hasher
}

func (o *ClientsOptions) defaults() {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = max(1, goruntime.GOMAXPROCS(0)/4)
	}
	if o.MaxWaiting <= 0 {
		o.MaxWaiting = 32
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Minute
	}
	if o.BackoffAfter <= 0 {
		o.BackoffAfter = 5
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Hasher == nil {
		o.Hasher = pbkdf2SHA256
	}
}

// maxTrackedUnknown bounds the back-off records of unknown client ids, so
// random ids cannot grow memory; maxTrackedID bounds the id length kept.
const (
	maxTrackedUnknown = 4096
	maxTrackedID      = 256
)

// Clients authenticates callers against their configured secret hashes.
// PBKDF2 secrets are defended against guessing and CPU exhaustion: every
// failed attempt costs the same derivation work whatever the id (no
// client-id oracle), derivations run a bounded number at once, a verified
// secret is cached for a while, and repeated failures of one id back off.
type Clients struct {
	byID map[string]*client
	opts ClientsOptions
	// failIter is the PBKDF2 work (iterations) of every failed attempt:
	// the largest configured, 0 when no client uses PBKDF2 (then every
	// attempt costs one SHA-256, known ids or not).
	failIter  int
	dummySalt []byte
	slots     chan struct{}
	waiting   atomic.Int64

	mu      sync.Mutex
	unknown map[string]*failures // back-off of unknown ids
}

// failures is one id's run of failed attempts.
type failures struct {
	n     int
	until time.Time
}

type client struct {
	cfg  ClientConfig
	sha  []byte // sha256 form
	iter int    // pbkdf2 form
	salt []byte
	dk   []byte

	mu sync.Mutex
	// verified is the SHA-256 of the last secret that passed PBKDF2, until
	// verifiedUntil: the next requests cost a hash, not a derivation.
	verified      []byte
	verifiedUntil time.Time
	fails         failures
}

const pbkdf2DefaultIter = 600_000

// NewClients parses the configured clients with the default defences; a
// bad entry is an error naming it.
func NewClients(cfgs []ClientConfig) (*Clients, error) {
	return NewClientsWith(cfgs, ClientsOptions{})
}

// NewClientsWith is NewClients with tuned defences.
func NewClientsWith(cfgs []ClientConfig, opts ClientsOptions) (*Clients, error) {
	opts.defaults()
	c := &Clients{byID: make(map[string]*client, len(cfgs)), opts: opts,
		slots: make(chan struct{}, opts.MaxConcurrent), unknown: map[string]*failures{}}
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
		c.failIter = max(c.failIter, cl.iter)
		c.byID[who] = cl
	}
	c.dummySalt = make([]byte, 16)
	if _, err := rand.Read(c.dummySalt); err != nil {
		return nil, err
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
func (c *Clients) Authenticate(ctx context.Context, id, secret string) (Caller, error) {
	sum := sha256.Sum256([]byte(secret))
	now := c.opts.Now()
	cl := c.byID[id]
	if cl != nil && secret != "" {
		// The cheap checks come first, before any back-off: the real
		// client keeps working while an attacker is backed off.
		if cl.sha != nil && subtle.ConstantTimeCompare(sum[:], cl.sha) == 1 {
			return c.succeeded(cl, true), nil
		}
		if cl.sha == nil && cl.cached(sum[:], now) {
			// Does not end a back-off: else every request of the real
			// client would hand an attacker BackoffAfter fresh guesses.
			return c.succeeded(cl, false), nil
		}
	}
	if c.backedOff(id, cl, now) {
		return Caller{}, ErrBadClient
	}
	ok, err := c.verify(ctx, cl, secret, sum[:])
	if err != nil {
		return Caller{}, err
	}
	if !ok {
		c.failed(id, cl, now)
		return Caller{}, ErrBadClient
	}
	cl.mu.Lock()
	cl.verified, cl.verifiedUntil = sum[:], now.Add(c.opts.CacheTTL)
	cl.mu.Unlock()
	return c.succeeded(cl, true), nil
}

// verify runs the expensive check in a derivation slot. A known PBKDF2
// client derives with its own parameters; whatever is left of failIter is
// derived with a dummy salt, so a failure costs failIter iterations for a
// wrong secret, an unknown id or a SHA-256 client alike.
func (c *Clients) verify(ctx context.Context, cl *client, secret string, sum []byte) (bool, error) {
	if c.failIter == 0 {
		// No PBKDF2 client: the SHA-256 comparison above was the whole
		// check; an unknown id compares too, so it costs the same.
		subtle.ConstantTimeCompare(sum, make([]byte, sha256.Size))
		return false, nil
	}
	if err := c.acquire(ctx); err != nil {
		return false, err
	}
	defer func() { <-c.slots }()
	spent, ok := 0, false
	if cl != nil && cl.iter > 0 && secret != "" {
		dk, err := c.opts.Hasher(secret, cl.salt, cl.iter, len(cl.dk))
		spent, ok = cl.iter, err == nil && subtle.ConstantTimeCompare(dk, cl.dk) == 1
	}
	if !ok && spent < c.failIter {
		_, _ = c.opts.Hasher(secret, c.dummySalt, c.failIter-spent, 32)
	}
	return ok, nil
}

// acquire takes a derivation slot, waiting (with ctx) only while fewer
// than MaxWaiting others wait.
func (c *Clients) acquire(ctx context.Context) error {
	select {
	case c.slots <- struct{}{}:
		return nil
	default:
	}
	if c.waiting.Add(1) > int64(c.opts.MaxWaiting) {
		c.waiting.Add(-1)
		return ErrBusy
	}
	defer c.waiting.Add(-1)
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting to verify a client secret: %w", runtime.ErrTimeout, ctx.Err())
	}
}

func (cl *client) cached(sum []byte, now time.Time) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.verified != nil && now.Before(cl.verifiedUntil) && subtle.ConstantTimeCompare(sum, cl.verified) == 1
}

// succeeded answers for an authenticated client; a full verification
// (reset) ends its run of failures.
func (c *Clients) succeeded(cl *client, reset bool) Caller {
	if reset {
		cl.mu.Lock()
		cl.fails = failures{}
		cl.mu.Unlock()
	}
	return Caller{ClientID: cl.cfg.ClientID, Live: cl.cfg.Live, Audiences: cl.cfg.Audiences}
}

// backedOff reports whether id is in a back-off, known or not.
func (c *Clients) backedOff(id string, cl *client, now time.Time) bool {
	if cl != nil {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return now.Before(cl.fails.until)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.unknown[id]
	return ok && now.Before(f.until)
}

// failed counts a failure of id and starts or extends its back-off.
func (c *Clients) failed(id string, cl *client, now time.Time) {
	var f *failures
	if cl != nil {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		f = &cl.fails
	} else {
		if len(id) > maxTrackedID {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if f = c.unknown[id]; f == nil {
			if len(c.unknown) >= maxTrackedUnknown {
				for k, v := range c.unknown {
					if !now.Before(v.until) {
						delete(c.unknown, k)
					}
				}
				if len(c.unknown) >= maxTrackedUnknown {
					return // untracked: it still pays full derivations, in the slots
				}
			}
			f = &failures{}
			c.unknown[id] = f
		}
	}
	f.n++
	if extra := f.n - c.opts.BackoffAfter; extra >= 0 {
		d := c.opts.BackoffMax
		if extra < 32 {
			d = min(c.opts.BackoffBase<<extra, c.opts.BackoffMax)
		}
		f.until = now.Add(d)
	}
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
