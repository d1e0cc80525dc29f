package login

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

// Standard Webhooks (https://www.standardwebhooks.com/, REFERENCE.md §5):
// the sender signs "<webhook-id>.<webhook-timestamp>.<raw body>" with
// HMAC-SHA256 and sends "v1,<base64>" entries, space-separated, in
// webhook-signature. Supabase's auth hooks and our native triggers use it.

// Standard Webhooks header names.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// DefaultWebhookTolerance is how far a webhook-timestamp may lie from our
// clock, in both directions, as the Standard Webhooks libraries do.
const DefaultWebhookTolerance = 5 * time.Minute

// DefaultReplayRate is the signed logins per second one verifier is sized
// for when the configuration names no hooks.replay_rate.
const DefaultReplayRate = 1000

// DefaultReplayCacheSize bounds the remembered webhook ids per verifier:
// ReplayCapacity(DefaultWebhookTolerance, DefaultReplayRate).
const DefaultReplayCacheSize = int(2*DefaultWebhookTolerance/time.Second) * DefaultReplayRate

// ReplayCapacity is how many ids a verifier must hold to take rate signed
// logins per second without refusing one: an id is remembered until its
// timestamp leaves the window, and a timestamp may lie up to tolerance in
// the future, so an id lives at most 2×tolerance.
func ReplayCapacity(tolerance time.Duration, rate int) int {
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	if rate <= 0 {
		rate = DefaultReplayRate
	}
	return int(2*tolerance/time.Second) * rate
}

const (
	schemeWebhooks = "standard-webhooks"
	// maxWebhookID bounds the id we remember; the spec's ids are short (msg_…, uuids).
	maxWebhookID = 256
	// maxSignatureEntries bounds the work one header can cause.
	maxSignatureEntries = 16
)

// ParseWebhookSecrets parses one or more Standard Webhooks secrets joined by
// "|": each "whsec_<base64>" or Supabase's "v1,whsec_<base64>". The key is the
// base64-decoded part after "whsec_". Errors name the secret by position,
// never its value.
func ParseWebhookSecrets(s string) ([][]byte, error) {
	var keys [][]byte
	for i, part := range strings.Split(s, "|") {
		part = strings.TrimSpace(part)
		part = strings.TrimPrefix(part, "v1,")
		b64, ok := strings.CutPrefix(part, "whsec_")
		if !ok {
			return nil, fmt.Errorf("%w: webhook secret #%d: want whsec_<base64> or v1,whsec_<base64>", runtime.ErrInvalid, i+1)
		}
		key, err := decodeBase64Any(b64)
		if err != nil {
			return nil, fmt.Errorf("%w: webhook secret #%d: the part after whsec_ is not base64", runtime.ErrInvalid, i+1)
		}
		if len(key) == 0 {
			return nil, fmt.Errorf("%w: webhook secret #%d is empty", runtime.ErrInvalid, i+1)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// decodeBase64Any accepts standard base64 with or without padding (senders differ).
func decodeBase64Any(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// SignWebhook returns the webhook-signature value for one key: "v1,<base64>".
// Tests and clients (samples/auth0) use it; the verifier computes the same.
func SignWebhook(key []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(webhookMAC(key, id, strconv.FormatInt(ts.Unix(), 10), body))
}

func webhookMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// WebhookVerifier checks Standard Webhooks signatures for one caller and
// rejects a webhook-id seen before within the tolerance window.
type WebhookVerifier struct {
	keys      [][]byte
	tolerance time.Duration
	now       func() time.Time
	replay    *replayGuard
}

// WebhookOptions tune a WebhookVerifier; zero values take the defaults.
type WebhookOptions struct {
	Tolerance time.Duration    // default DefaultWebhookTolerance
	Now       func() time.Time // default time.Now
	// ReplayCacheSize bounds the remembered ids of the verifier's own
	// in-process cache (default DefaultReplayCacheSize).
	ReplayCacheSize int
	// replay, when set, is the replay check to use (ReplayCacheSize is
	// then ignored): the server's ReplayCaches hand a rebuilt verifier the
	// old one's ids, so a reload never reopens the replay window.
	replay *replayGuard
}

// NewWebhookVerifier returns a verifier for the "|"-joined secrets.
func NewWebhookVerifier(secrets string, o WebhookOptions) (*WebhookVerifier, error) {
	keys, err := ParseWebhookSecrets(secrets)
	if err != nil {
		return nil, err
	}
	if o.Tolerance <= 0 {
		o.Tolerance = DefaultWebhookTolerance
	}
	if o.ReplayCacheSize <= 0 {
		o.ReplayCacheSize = DefaultReplayCacheSize
	}
	replay := o.replay
	if replay == nil {
		replay = &replayGuard{store: NewReplayCache(o.ReplayCacheSize)}
	}
	return &WebhookVerifier{keys: keys, tolerance: o.Tolerance, now: hooks.NowFunc(o.Now), replay: replay}, nil
}

// Verify authenticates body against the Standard Webhooks headers and returns
// the webhook-id. The id is remembered only once the signature is valid, so
// forged requests cannot fill the replay store; a replay is refused (401),
// and a replay store that cannot answer refuses the request (503/504).
func (v *WebhookVerifier) Verify(ctx context.Context, h http.Header, body []byte) (string, error) {
	id := h.Get(HeaderWebhookID)
	tsRaw := h.Get(HeaderWebhookTimestamp)
	sigs := h.Get(HeaderWebhookSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return "", hooks.AuthFailure(schemeWebhooks, "missing webhook-id, webhook-timestamp or webhook-signature header")
	}
	if len(id) > maxWebhookID {
		return "", hooks.AuthFailure(schemeWebhooks, "webhook-id longer than %d bytes", maxWebhookID)
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return "", hooks.AuthFailure(schemeWebhooks, "webhook-timestamp %q is not unix seconds", truncate(tsRaw, 32))
	}
	now := v.now()
	sent := time.Unix(ts, 0)
	if d := now.Sub(sent); d > v.tolerance || d < -v.tolerance {
		return "", hooks.AuthFailure(schemeWebhooks, "webhook-timestamp is %s away from now, outside the %s tolerance", d.Truncate(time.Second).Abs(), v.tolerance)
	}
	presented, err := parseWebhookSignatures(sigs)
	if err != nil {
		return "", err
	}
	if !v.match(id, tsRaw, body, presented) {
		return "", hooks.AuthFailure(schemeWebhooks, "no webhook-signature entry matches")
	}
	// The id must be remembered until its timestamp leaves the window; after
	// that the timestamp check rejects a replay by itself.
	if err := v.replay.remember(ctx, schemeWebhooks, id, now, sent.Add(v.tolerance)); err != nil {
		return "", err
	}
	return id, nil
}

// Release forgets a verified id again. Handlers call it when their own
// processing of the message failed (a 5xx): the sender's retry carries the
// same webhook-id and must not be refused as a replay; reprocessing the
// same login is harmless because handlers are idempotent.
func (v *WebhookVerifier) Release(ctx context.Context, id string) { v.replay.forget(ctx, id) }

func (v *WebhookVerifier) match(id, ts string, body []byte, presented [][]byte) bool {
	ok := 0
	for _, k := range v.keys {
		want := webhookMAC(k, id, ts, body)
		for _, p := range presented {
			// hmac.Equal is constant time for equal lengths; the length of a
			// SHA-256 MAC is public anyway.
			if hmac.Equal(want, p) {
				ok = 1
			}
		}
	}
	return ok == 1
}

// parseWebhookSignatures reads space-separated "v1,<base64>" entries.
// Entries of other versions (v1a asymmetric signatures) are skipped; at
// least one v1 entry must be present.
func parseWebhookSignatures(h string) ([][]byte, error) {
	fields := strings.Fields(h)
	if len(fields) > maxSignatureEntries {
		return nil, hooks.AuthFailure(schemeWebhooks, "webhook-signature has %d entries, at most %d allowed", len(fields), maxSignatureEntries)
	}
	var out [][]byte
	for _, f := range fields {
		ver, sig, ok := strings.Cut(f, ",")
		if !ok || ver != "v1" {
			continue
		}
		b, err := decodeBase64Any(sig)
		if err != nil || len(b) != sha256.Size {
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, hooks.AuthFailure(schemeWebhooks, "webhook-signature has no v1,<base64 HMAC-SHA256> entry")
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
