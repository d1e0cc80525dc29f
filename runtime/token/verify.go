package token

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
)

// Reasons a token is rejected. InvalidTokenError wraps one of them.
var (
	ErrMalformed   = errors.New("malformed token")
	ErrUnknownKey  = errors.New("unknown signing key")
	ErrAlgorithm   = errors.New("algorithm not allowed for the key")
	ErrSignature   = errors.New("signature does not verify")
	ErrType        = errors.New("wrong token type")
	ErrIssuer      = errors.New("wrong issuer")
	ErrAudience    = errors.New("wrong audience")
	ErrExpired     = errors.New("token expired")
	ErrNotYetValid = errors.New("token not yet valid")
	ErrRevoked     = errors.New("token revoked")
)

// InvalidTokenError says why a token was rejected. It matches its reason
// (ErrExpired, …) and runtime.ErrUnauthenticated.
type InvalidTokenError struct {
	Reason error
	Detail string
}

func (e *InvalidTokenError) Error() string {
	if e.Detail == "" {
		return "invalid token: " + e.Reason.Error()
	}
	return "invalid token: " + e.Reason.Error() + ": " + e.Detail
}

// Unwrap returns the reason.
func (e *InvalidTokenError) Unwrap() error { return e.Reason }

// Is reports runtime.ErrUnauthenticated.
func (e *InvalidTokenError) Is(target error) bool { return target == runtime.ErrUnauthenticated }

func invalid(reason error, format string, args ...any) error {
	return &InvalidTokenError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Kind is the kind of token a caller expects.
type Kind uint8

// Token kinds.
const (
	KindAccessToken Kind = iota
	KindIDToken
)

func (k Kind) String() string {
	if k == KindIDToken {
		return "id token"
	}
	return "access token"
}

// MaxTokenBytes bounds what the verifier parses. An 8 KiB claim set signed
// with RSA is about 11.5 KB in compact form.
const MaxTokenBytes = 64 << 10

// jwsAlgorithms are the only algorithms the parser accepts: "none" and the
// HMAC family never reach a key.
var jwsAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// Verifier checks tokens claimsmith minted.
type Verifier struct {
	keys   *KeySet
	issuer string
	leeway time.Duration
	now    func() time.Time
}

// NewVerifier verifies against keys for tokens from issuer, allowing leeway
// of clock skew on exp, nbf and iat.
func NewVerifier(keys *KeySet, issuer string, leeway time.Duration, now func() time.Time) (*Verifier, error) {
	if keys == nil || now == nil {
		return nil, errors.New("token: NewVerifier needs a key set and a clock")
	}
	if err := ValidateIssuer(issuer); err != nil {
		return nil, err
	}
	if leeway < 0 || leeway > 5*time.Minute {
		return nil, &runtime.ValidationError{Entity: "tokens", Field: "leeway", Reason: fmt.Sprintf("%s must be between 0 and 5m", leeway)}
	}
	return &Verifier{keys: keys, issuer: issuer, leeway: leeway, now: now}, nil
}

// VerifyOptions says what the caller expects.
type VerifyOptions struct {
	Kind Kind
	// Audience, when set, must be one of the token's aud values.
	Audience string
}

// Audience is the aud claim: one string or an array of strings.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud must be a string or an array of strings")
	}
	*a = l
	return nil
}

// NumericDate is seconds since the epoch (RFC 7519 §2), fractions allowed.
type NumericDate int64

// UnmarshalJSON accepts a JSON number.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return fmt.Errorf("%s is not a NumericDate", b)
	}
	*d = NumericDate(f)
	return nil
}

// Time converts to time.Time.
func (d NumericDate) Time() time.Time { return time.Unix(int64(d), 0).UTC() }

// Claims are the registered and protocol claims of a verified token.
type Claims struct {
	Issuer    string      `json:"iss"`
	Subject   string      `json:"sub"`
	Audience  Audience    `json:"aud"`
	Expiry    NumericDate `json:"exp"`
	IssuedAt  NumericDate `json:"iat"`
	NotBefore NumericDate `json:"nbf"`
	ID        string      `json:"jti"`
	ClientID  string      `json:"client_id"`
	Scope     string      `json:"scope"`
	AuthTime  NumericDate `json:"auth_time"`
	Nonce     string      `json:"nonce"`
}

// Verified is a token that passed every check.
type Verified struct {
	KeyID     string
	Algorithm Algorithm
	Type      string
	Claims    Claims
	// Payload is the verified JSON claim set.
	Payload []byte
}

// Verify checks, in order: size and compact form; alg is one we use (so no
// "none" and no HS256 signed with a public key); kid names a key of our own
// key set that may verify (active or retired); alg equals that key's
// algorithm; the signature; typ fits the expected kind (at+jwt for access
// tokens, JWT for ID tokens); iss; aud when asked; exp, nbf and iat with the
// leeway. Every failure is an *InvalidTokenError.
func (v *Verifier) Verify(ctx context.Context, tok string, opt VerifyOptions) (*Verified, error) {
	if len(tok) > MaxTokenBytes {
		return nil, invalid(ErrMalformed, "token is %d bytes, more than %d", len(tok), MaxTokenBytes)
	}
	if strings.Count(tok, ".") != 2 {
		return nil, invalid(ErrMalformed, "not a compact JWS")
	}
	jws, err := jose.ParseSignedCompact(tok, jwsAlgorithms)
	if err != nil {
		var bad *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &bad) {
			return nil, invalid(ErrAlgorithm, "alg %q is not accepted", bad.Got)
		}
		return nil, invalid(ErrMalformed, "%v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid(ErrMalformed, "want exactly one signature")
	}
	h := jws.Signatures[0].Protected
	key, state, ok := v.keys.VerificationKey(h.KeyID)
	if !ok && state == StateNext && v.now().Add(v.leeway).After(key.ActivateAt) {
		// Another node whose clock runs up to the leeway ahead may already
		// sign with a key this node still sees as next.
		ok = true
	}
	if !ok {
		if key != nil {
			return nil, invalid(ErrUnknownKey, "kid %q is %s", h.KeyID, state)
		}
		return nil, invalid(ErrUnknownKey, "kid %q is not in the key set", h.KeyID)
	}
	if h.Algorithm != string(key.Algorithm) {
		return nil, invalid(ErrAlgorithm, "alg %q on a %s key", h.Algorithm, key.Algorithm)
	}
	payload, err := jws.Verify(key.Public())
	if err != nil {
		return nil, invalid(ErrSignature, "kid %q", h.KeyID)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !typeMatches(typ, opt.Kind) {
		return nil, invalid(ErrType, "typ %q is not an %s", typ, opt.Kind)
	}
	out := &Verified{KeyID: key.ID, Algorithm: key.Algorithm, Type: typ, Payload: payload}
	payload = bytes.TrimSpace(payload)
	if len(payload) == 0 || payload[0] != '{' {
		return nil, invalid(ErrMalformed, "claims are not a JSON object")
	}
	if err := json.Unmarshal(payload, &out.Claims); err != nil {
		return nil, invalid(ErrMalformed, "claims: %v", err)
	}
	c := &out.Claims
	if c.Issuer != v.issuer {
		return nil, invalid(ErrIssuer, "iss %q", c.Issuer)
	}
	if opt.Audience != "" && !slices.Contains(c.Audience, opt.Audience) {
		return nil, invalid(ErrAudience, "aud %q does not include %q", []string(c.Audience), opt.Audience)
	}
	if c.Subject == "" || c.Expiry == 0 {
		return nil, invalid(ErrMalformed, "sub and exp are required")
	}
	if opt.Kind == KindAccessToken && (c.ClientID == "" || c.ID == "" || len(c.Audience) == 0) {
		return nil, invalid(ErrMalformed, "an access token needs client_id, jti and aud (RFC 9068)")
	}
	now := v.now()
	if !now.Before(c.Expiry.Time().Add(v.leeway)) {
		return nil, invalid(ErrExpired, "expired at %s", c.Expiry.Time().Format(time.RFC3339))
	}
	if c.NotBefore != 0 && now.Add(v.leeway).Before(c.NotBefore.Time()) {
		return nil, invalid(ErrNotYetValid, "nbf %s", c.NotBefore.Time().Format(time.RFC3339))
	}
	if c.IssuedAt != 0 && now.Add(v.leeway).Before(c.IssuedAt.Time()) {
		return nil, invalid(ErrNotYetValid, "iat %s is in the future", c.IssuedAt.Time().Format(time.RFC3339))
	}
	return out, nil
}

// typeMatches compares typ case-insensitively, allowing the "application/"
// prefix (RFC 7515 §4.1.9).
func typeMatches(typ string, k Kind) bool {
	t := strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "application/"))
	if k == KindIDToken {
		return t == "jwt"
	}
	return t == TypeAccessToken
}
