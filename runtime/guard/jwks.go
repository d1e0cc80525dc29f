package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
)

// KeySource hands the verifier the public key a token names. It returns an
// error matching ErrUnknownKey for a kid it does not know, and one matching
// runtime.ErrUnavailable when it could not ask.
type KeySource interface {
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

// RemoteKeysConfig configures RemoteKeys.
type RemoteKeysConfig struct {
	// Issuer is the OIDC issuer; its discovery document names the JWKS.
	Issuer string
	// JWKSURL skips discovery when set.
	JWKSURL string
	// MinRefetch is the least time between two fetches caused by unknown
	// kids (default 30s): a flood of tokens with made-up kids costs one
	// fetch per interval, never one per token.
	MinRefetch time.Duration
	// MaxAge is how long fetched keys are used before a background refetch
	// (default 1h). A failed refetch keeps the old keys.
	MaxAge time.Duration
	// Client is the HTTP client (default: one with a 10s timeout).
	Client *http.Client
	Now    func() time.Time
	Logger *slog.Logger
}

// RemoteKeys is a JWKS cache fed by OIDC discovery. Safe for concurrent use.
type RemoteKeys struct {
	cfg RemoteKeysConfig

	mu      sync.RWMutex
	keys    map[string]*jose.JSONWebKey
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt, success or not
	jwksURL string

	fetch sync.Mutex // one fetch at a time
}

// NewRemoteKeys checks cfg; nothing is fetched until the first token.
func NewRemoteKeys(cfg RemoteKeysConfig) (*RemoteKeys, error) {
	if cfg.Issuer == "" && cfg.JWKSURL == "" {
		return nil, fmt.Errorf("%w: remote keys need an issuer or a jwks_url", runtime.ErrInvalid)
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = 30 * time.Second
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Hour
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &RemoteKeys{cfg: cfg, jwksURL: cfg.JWKSURL}, nil
}

// Key returns the key with kid, fetching the JWKS when the cache is empty or
// old, or when kid is unknown and the last fetch is at least MinRefetch ago.
func (k *RemoteKeys) Key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	now := k.cfg.Now()
	k.mu.RLock()
	key, ok := k.pick(kid)
	fresh := !k.fetched.IsZero() && now.Sub(k.fetched) < k.cfg.MaxAge
	k.mu.RUnlock()
	if ok && fresh {
		return key, nil
	}
	if err := k.refresh(ctx, now, ok); err != nil && !ok {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if key, ok := k.pick(kid); ok {
		return key, nil
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// pick finds kid; a token without kid matches a set of exactly one key.
func (k *RemoteKeys) pick(kid string) (*jose.JSONWebKey, bool) {
	if kid == "" && len(k.keys) == 1 {
		for _, v := range k.keys {
			return v, true
		}
	}
	key, ok := k.keys[kid]
	return key, ok
}

// refresh fetches unless another caller just did or the rate limit holds.
// stale says the caller has a usable key and only wants a newer set.
func (k *RemoteKeys) refresh(ctx context.Context, now time.Time, stale bool) error {
	k.fetch.Lock()
	defer k.fetch.Unlock()
	k.mu.RLock()
	tried, fetched := k.tried, k.fetched
	k.mu.RUnlock()
	if !tried.IsZero() && now.Sub(tried) < k.cfg.MinRefetch {
		if fetched.IsZero() {
			return fmt.Errorf("%w: the issuer's keys could not be fetched (next attempt after %s)", runtime.ErrUnavailable, k.cfg.MinRefetch)
		}
		return nil // rate limited: answer from what we have
	}
	keys, err := k.load(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tried = now
	if err != nil {
		k.cfg.Logger.WarnContext(ctx, "guard: fetching the JWKS failed", "issuer", k.cfg.Issuer, "err", err, "keeping_old_keys", len(k.keys) > 0)
		if stale || len(k.keys) > 0 {
			return nil
		}
		return fmt.Errorf("%w: %v", runtime.ErrUnavailable, err)
	}
	k.keys, k.fetched = keys, now
	return nil
}

const maxDocBytes = 1 << 20

func (k *RemoteKeys) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocBytes))
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if len(b) > maxDocBytes {
		return fmt.Errorf("GET %s: answer larger than %d bytes", url, maxDocBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

func (k *RemoteKeys) load(ctx context.Context) (map[string]*jose.JSONWebKey, error) {
	k.mu.RLock()
	url := k.jwksURL
	k.mu.RUnlock()
	if url == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		disc := strings.TrimSuffix(k.cfg.Issuer, "/") + "/.well-known/openid-configuration"
		if err := k.getJSON(ctx, disc, &doc); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		// OIDC Discovery §4.3: the document must name the issuer asked for.
		if doc.Issuer != k.cfg.Issuer {
			return nil, fmt.Errorf("discovery: issuer %q is not %q", doc.Issuer, k.cfg.Issuer)
		}
		if !strings.HasPrefix(doc.JWKSURI, "https://") && !strings.HasPrefix(doc.JWKSURI, "http://") {
			return nil, fmt.Errorf("discovery: jwks_uri %q is not an http(s) URL", doc.JWKSURI)
		}
		url = doc.JWKSURI
		k.mu.Lock()
		k.jwksURL = url
		k.mu.Unlock()
	}
	var set jose.JSONWebKeySet
	if err := k.getJSON(ctx, url, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := make(map[string]*jose.JSONWebKey, len(set.Keys))
	for i := range set.Keys {
		jk := set.Keys[i]
		if (jk.Use != "" && jk.Use != "sig") || !jk.IsPublic() || !jk.Valid() {
			continue
		}
		keys[jk.KeyID] = &jk
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no public signing keys")
	}
	return keys, nil
}

// StaticKeys is a fixed key set (tests, or keys claimsmith holds in
// process). Keys without a kid are not usable.
type StaticKeys map[string]*jose.JSONWebKey

// Key implements KeySource.
func (s StaticKeys) Key(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}
