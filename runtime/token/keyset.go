package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
)

// KeySetConfig sets how keys are generated and rotated.
type KeySetConfig struct {
	// Algorithm of generated keys (default RS256).
	Algorithm Algorithm
	// RSABits for RS256/PS256 keys (default 2048).
	RSABits int
	// PropagationDelay is how long a rotated-in key is published as "next"
	// before it signs, so relying parties caching the JWKS learn it first
	// (default 1h). It must exceed the JWKS cache lifetime of every relying
	// party and the reload interval of every node.
	PropagationDelay time.Duration
	// Retention is how long a retired key stays published: the longest token
	// lifetime plus the verification leeway, so every token it signed can
	// still be verified until it expires (default 24h).
	Retention time.Duration
}

func (c *KeySetConfig) defaults() error {
	if c.Algorithm == "" {
		c.Algorithm = RS256
	}
	if _, err := ParseAlgorithm(string(c.Algorithm)); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if c.PropagationDelay == 0 {
		c.PropagationDelay = time.Hour
	}
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
	if c.PropagationDelay < 0 || c.Retention < 0 {
		return fmt.Errorf("%w: keys: propagation delay and retention must not be negative", runtime.ErrInvalid)
	}
	return nil
}

// KeySet is claimsmith's signing keys with rotation. States follow from the
// injected clock: a rotated-in key is "next" (published, not signing) until
// its ActivateAt; the newest key whose ActivateAt has passed is "active"; an
// older one is "retired" (published, verifies) for Retention after the key
// that replaced it activated, then "dropped" (not published, does not verify;
// Prune deletes it from the store).
type KeySet struct {
	store KeyStore
	cfg   KeySetConfig
	now   func() time.Time
	log   *slog.Logger

	mu   sync.RWMutex
	keys []*Key // sorted by ActivateAt, then ID
}

// ErrNoActiveKey is returned when the key set has no key that may sign.
var ErrNoActiveKey = fmt.Errorf("%w: no active signing key", runtime.ErrUnavailable)

// NewKeySet builds a key set over store. now is the clock (time.Now in
// production, a fake in tests). Call Init or Load before use.
func NewKeySet(store KeyStore, cfg KeySetConfig, now func() time.Time, log *slog.Logger) (*KeySet, error) {
	if store == nil || now == nil || log == nil {
		return nil, errors.New("token: NewKeySet needs a store, a clock and a logger")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &KeySet{store: store, cfg: cfg, now: now, log: log}, nil
}

// Config returns the effective configuration.
func (s *KeySet) Config() KeySetConfig { return s.cfg }

// Load replaces the in-memory keys with the store's. Keys already loaded keep
// their prepared signers.
func (s *KeySet) Load(ctx context.Context) error {
	loaded, err := s.store.LoadKeys(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := make(map[string]*Key, len(s.keys))
	for _, k := range s.keys {
		old[k.ID] = k
	}
	keys := make([]*Key, 0, len(loaded))
	for _, k := range loaded {
		if o, ok := old[k.ID]; ok && o.ActivateAt.Equal(k.ActivateAt) {
			k = o
		}
		keys = append(keys, k)
	}
	sortKeys(keys)
	s.keys = keys
	return nil
}

func sortKeys(keys []*Key) {
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].ActivateAt.Equal(keys[j].ActivateAt) {
			return keys[i].ActivateAt.Before(keys[j].ActivateAt)
		}
		return keys[i].ID < keys[j].ID
	})
}

// Init loads the keys and, when none can sign (first start, or every key
// dropped after a long downtime), generates one that is active at once:
// nothing can have cached a JWKS without it yet.
func (s *KeySet) Init(ctx context.Context) error {
	if err := s.Load(ctx); err != nil {
		return err
	}
	if _, err := s.Active(); err == nil {
		return nil
	}
	now := s.now()
	k, err := GenerateKey(s.cfg.Algorithm, s.cfg.RSABits, now, now)
	if err != nil {
		return err
	}
	if err := s.store.CreateKey(ctx, k); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "generated signing key", "kid", k.ID, "alg", k.Algorithm)
	return s.Load(ctx)
}

// Rotate generates a key (alg "" uses the configured algorithm), publishes it
// as next and schedules it to sign after the propagation delay; the current
// key retires at that moment.
func (s *KeySet) Rotate(ctx context.Context, alg Algorithm) (*Key, error) {
	if alg == "" {
		alg = s.cfg.Algorithm
	}
	now := s.now()
	k, err := GenerateKey(alg, s.cfg.RSABits, now, now.Add(s.cfg.PropagationDelay))
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateKey(ctx, k); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "rotated signing key", "kid", k.ID, "alg", k.Algorithm, "activate_at", k.ActivateAt)
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Prune deletes dropped keys from the store and returns their kids.
func (s *KeySet) Prune(ctx context.Context) ([]string, error) {
	var dropped []string
	for _, in := range s.Infos() {
		if in.State == StateDropped {
			dropped = append(dropped, in.ID)
		}
	}
	for _, kid := range dropped {
		if err := s.store.DeleteKey(ctx, kid); err != nil {
			return nil, err
		}
		s.log.InfoContext(ctx, "dropped retired signing key", "kid", kid)
	}
	if len(dropped) > 0 {
		return dropped, s.Load(ctx)
	}
	return nil, nil
}

// Maintain reloads the keys (picking up a rotation made by `claimsmith keys
// rotate` or another node) and prunes dropped ones every interval until ctx
// ends. Errors are logged: the keys already loaded keep working.
func (s *KeySet) Maintain(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Init(ctx); err != nil {
			s.log.ErrorContext(ctx, "reload signing keys", "err", err)
			continue
		}
		if _, err := s.Prune(ctx); err != nil {
			s.log.ErrorContext(ctx, "prune signing keys", "err", err)
		}
	}
}

// KeyInfo describes a key for listings.
type KeyInfo struct {
	ID         string    `json:"kid"`
	Algorithm  Algorithm `json:"alg"`
	State      KeyState  `json:"state"`
	CreatedAt  time.Time `json:"created_at"`
	ActivateAt time.Time `json:"activate_at"`
	// RetireAt is when the next key takes over (zero: not scheduled).
	RetireAt time.Time `json:"retire_at,omitzero"`
	// DropAt is when the key leaves the JWKS (zero: not scheduled).
	DropAt time.Time `json:"drop_at,omitzero"`
}

// state computes key i's state at now. Caller holds mu.
func (s *KeySet) info(i int, now time.Time) KeyInfo {
	k := s.keys[i]
	in := KeyInfo{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, ActivateAt: k.ActivateAt}
	if i+1 < len(s.keys) {
		in.RetireAt = s.keys[i+1].ActivateAt
		in.DropAt = in.RetireAt.Add(s.cfg.Retention)
	}
	switch {
	case now.Before(k.ActivateAt):
		in.State = StateNext
	case in.RetireAt.IsZero() || now.Before(in.RetireAt):
		in.State = StateActive
	case now.Before(in.DropAt):
		in.State = StateRetired
	default:
		in.State = StateDropped
	}
	return in
}

// Infos lists every stored key with its state now, oldest first.
func (s *KeySet) Infos() []KeyInfo {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]KeyInfo, len(s.keys))
	for i := range s.keys {
		out[i] = s.info(i, now)
	}
	return out
}

// Active returns the key that signs now.
func (s *KeySet) Active() (*Key, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	// The active key is the newest one already activated.
	for i := len(s.keys) - 1; i >= 0; i-- {
		if !now.Before(s.keys[i].ActivateAt) {
			return s.keys[i], nil
		}
	}
	return nil, ErrNoActiveKey
}

// VerificationKey returns the key named kid if tokens signed by it may still
// be accepted: it is active or retired. A next key has signed nothing yet and
// a dropped key's tokens have all expired.
func (s *KeySet) VerificationKey(kid string) (*Key, KeyState, bool) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, k := range s.keys {
		if k.ID != kid {
			continue
		}
		st := s.info(i, now).State
		return k, st, st == StateActive || st == StateRetired
	}
	return nil, "", false
}

// Published returns the keys in the JWKS now: next, active and retired.
func (s *KeySet) Published() []*Key {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Key
	for i, k := range s.keys {
		if s.info(i, now).State != StateDropped {
			out = append(out, k)
		}
	}
	return out
}

// JWKS returns the published public keys, newest first (clients that try
// keys in order find the active one sooner).
func (s *KeySet) JWKS() jose.JSONWebKeySet {
	pub := s.Published()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(pub))}
	for i := len(pub) - 1; i >= 0; i-- {
		set.Keys = append(set.Keys, pub[i].PublicJWK())
	}
	return set
}

// PublishedAlgorithms lists the distinct algorithms of the published keys.
func (s *KeySet) PublishedAlgorithms() []Algorithm {
	seen := map[Algorithm]bool{}
	var out []Algorithm
	for _, k := range s.Published() {
		if !seen[k.Algorithm] {
			seen[k.Algorithm] = true
			out = append(out, k.Algorithm)
		}
	}
	return out
}

// CacheMaxAge is how long a relying party may cache the JWKS. A key published
// by a rotation signs PropagationDelay later, so caching for half of it lets
// every cache refresh at least once in between; it is also cut to the next
// scheduled change (an activation or a drop) and capped at an hour.
func (s *KeySet) CacheMaxAge() time.Duration {
	maxAge := min(s.cfg.PropagationDelay/2, time.Hour)
	now := s.now()
	for _, in := range s.Infos() {
		for _, t := range []time.Time{in.ActivateAt, in.DropAt} {
			if t.After(now) {
				maxAge = min(maxAge, t.Sub(now))
			}
		}
	}
	return max(maxAge, 0)
}
