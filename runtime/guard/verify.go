package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
)

// MaxTokenBytes bounds what the verifier parses.
const MaxTokenBytes = 64 << 10

// defaultAlgorithms are the algorithms accepted when none are configured:
// never "none", never HMAC (a public key must not become a shared secret).
func defaultAlgorithms() []string { return []string{"RS256", "PS256", "ES256", "EdDSA"} }

// VerifierConfig configures a JWT verifier.
type VerifierConfig struct {
	// Issuer must equal the token's iss.
	Issuer string
	// Audiences: the token's aud must contain one of them (required unless
	// AnyAudience is set).
	Audiences   []string
	AnyAudience bool
	// Algorithms allowed (default RS256, PS256, ES256, EdDSA; HS* and none
	// are refused whatever is configured).
	Algorithms []string
	// Leeway for exp, nbf and iat (default 30s, at most 5m).
	Leeway time.Duration
	// Lenient turns off strict RFC 9068: typ need not be at+jwt and
	// client_id, jti, iat need not be present (Keycloak and Hydra sign
	// access tokens with typ JWT). exp, iss, sub and aud are still checked.
	Lenient bool
}

// JWTVerifier verifies signed JWT access tokens against a KeySource.
type JWTVerifier struct {
	cfg  VerifierConfig
	algs []jose.SignatureAlgorithm
	keys KeySource
	now  func() time.Time
}

// NewJWTVerifier checks cfg.
func NewJWTVerifier(cfg VerifierConfig, keys KeySource, now func() time.Time) (*JWTVerifier, error) {
	if keys == nil {
		return nil, fmt.Errorf("%w: a JWT verifier needs a key source", runtime.ErrInvalid)
	}
	if cfg.Issuer == "" {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "issuer", Reason: "required"}
	}
	if len(cfg.Audiences) == 0 && !cfg.AnyAudience {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "audiences", Reason: "required: the API's audience (or any_audience: true)"}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Leeway < 0 || cfg.Leeway > 5*time.Minute {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "leeway", Reason: fmt.Sprintf("%s must be between 0 and 5m", cfg.Leeway)}
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = defaultAlgorithms()
	}
	v := &JWTVerifier{cfg: cfg, keys: keys, now: now}
	for _, a := range cfg.Algorithms {
		switch a {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
			v.algs = append(v.algs, jose.SignatureAlgorithm(a))
		default:
			return nil, &runtime.ValidationError{Entity: "guard", Field: "algorithms", Reason: fmt.Sprintf("%q is not an asymmetric JWS algorithm", a)}
		}
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Verify checks the compact JWS and returns its claim set: size; allowed
// alg; kid known to the key source; the key's own alg (when it names one)
// equals the header's; the signature; typ at+jwt (unless lenient); iss;
// aud; exp, nbf, iat with the leeway; RFC 9068's required claims.
func (v *JWTVerifier) Verify(ctx context.Context, tok string) (map[string]any, error) {
	if len(tok) > MaxTokenBytes {
		return nil, invalidToken(ErrInvalidToken, "token of %d bytes", len(tok))
	}
	if strings.Count(tok, ".") != 2 {
		return nil, invalidToken(ErrInvalidToken, "not a compact JWS")
	}
	jws, err := jose.ParseSignedCompact(tok, v.algs)
	if err != nil {
		return nil, invalidToken(ErrInvalidToken, "%v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalidToken(ErrInvalidToken, "want exactly one signature")
	}
	h := jws.Signatures[0].Protected
	key, err := v.keys.Key(ctx, h.KeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, invalidToken(ErrUnknownKey, "kid %q", h.KeyID)
		}
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, invalidToken(ErrInvalidToken, "alg %q on a %s key", h.Algorithm, key.Algorithm)
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, invalidToken(ErrInvalidToken, "signature does not verify")
	}
	if !v.cfg.Lenient {
		typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
		t := strings.ToLower(typ)
		if t != "at+jwt" && t != "application/at+jwt" {
			return nil, invalidToken(ErrInvalidToken, "typ %q is not at+jwt (RFC 9068)", typ)
		}
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	if err := v.checkClaims(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, invalidToken(ErrInvalidToken, "claims are not a JSON object")
	}
	return claims, nil
}

func (v *JWTVerifier) checkClaims(c map[string]any) error {
	if iss := str(c["iss"]); iss != v.cfg.Issuer {
		return invalidToken(ErrInvalidToken, "iss %q", iss)
	}
	if !v.cfg.AnyAudience && !audienceMatches(c["aud"], v.cfg.Audiences) {
		return invalidToken(ErrInvalidToken, "aud does not name this API")
	}
	if str(c["sub"]) == "" {
		return invalidToken(ErrInvalidToken, "sub is required")
	}
	exp, ok := numericDate(c["exp"])
	if !ok {
		return invalidToken(ErrInvalidToken, "exp is required")
	}
	now := v.now()
	if !now.Before(exp.Add(v.cfg.Leeway)) {
		return invalidToken(ErrInvalidToken, "expired at %s", exp.Format(time.RFC3339))
	}
	if nbf, ok := numericDate(c["nbf"]); ok && now.Add(v.cfg.Leeway).Before(nbf) {
		return invalidToken(ErrInvalidToken, "not valid before %s", nbf.Format(time.RFC3339))
	}
	iat, hasIat := numericDate(c["iat"])
	if hasIat && now.Add(v.cfg.Leeway).Before(iat) {
		return invalidToken(ErrInvalidToken, "issued in the future")
	}
	if !v.cfg.Lenient && (!hasIat || str(c["client_id"]) == "" || str(c["jti"]) == "") {
		return invalidToken(ErrInvalidToken, "an access token needs iat, client_id and jti (RFC 9068)")
	}
	return nil
}

func audienceMatches(aud any, want []string) bool {
	switch a := aud.(type) {
	case string:
		return slices.Contains(want, a)
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}
