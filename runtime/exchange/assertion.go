package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt
// (RFC 7523 §2.2, OIDC Core §9).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLife bounds how far in the future an assertion's exp may be:
// its jti is remembered until then, so a long-lived assertion would pin
// memory and widen the replay window.
const maxAssertionLife = 10 * time.Minute

var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

func parseClientJWKS(s string) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(s), &set); err != nil {
		return nil, fmt.Errorf("not a JWK set: %v", err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("has no keys")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			return nil, fmt.Errorf("key %q is not a valid public key", k.KeyID)
		}
	}
	return &set, nil
}

// assertion verifies a private_key_jwt client assertion: signed by one of
// the client's keys with an asymmetric algorithm, iss = sub = client_id,
// aud naming claimsmith (issuer or token endpoint), exp in the future and
// at most maxAssertionLife away, a jti never seen before.
func (e *Exchanger) assertion(ctx context.Context, cred Credentials) (*Client, error) {
	fail := func(format string, args ...any) error {
		return &Error{Code: CodeInvalidClient, Description: "client assertion: " + fmt.Sprintf(format, args...)}
	}
	if cred.AssertionType != ClientAssertionType {
		return nil, fail("client_assertion_type %q is not %s", cred.AssertionType, ClientAssertionType)
	}
	if len(cred.Assertion) > MaxPeekBytes {
		return nil, fail("too large")
	}
	jws, err := jose.ParseSigned(cred.Assertion, assertionAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fail("not a compact JWS with one asymmetric signature")
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp int64           `json:"exp"`
		Nbf int64           `json:"nbf"`
		JTI string          `json:"jti"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return nil, fail("claims are not a JSON object")
	}
	id := c.Sub
	if cred.ClientID != "" && cred.ClientID != id {
		return nil, fail("sub is not client_id")
	}
	cl, err := e.lookup(ctx, id)
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return nil, err // the store cannot answer: a server condition
	}
	if cl == nil || cl.keys == nil {
		return nil, fail("client %q has no registered keys", id)
	}
	h := jws.Signatures[0].Protected
	keys := cl.keys.Keys
	if h.KeyID != "" {
		keys = cl.keys.Key(h.KeyID)
	}
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if _, err := jws.Verify(k.Key); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, fail("signature does not verify with the client's keys")
	}
	now := e.deps.Now()
	var aud []string
	if err := json.Unmarshal(c.Aud, &aud); err != nil {
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			aud = []string{one}
		}
	}
	base := strings.TrimSuffix(e.deps.Issuer, "/")
	switch {
	case c.Iss != id:
		return nil, fail("iss must equal sub")
	case e.deps.Issuer == "" || !slices.ContainsFunc(aud, func(a string) bool { return strings.TrimSuffix(a, "/") == base || a == base+"/oauth2/token" }):
		return nil, fail("aud must name claimsmith's issuer or token endpoint")
	case c.Exp == 0 || !now.Before(time.Unix(c.Exp, 0)):
		return nil, fail("expired or without exp")
	case time.Unix(c.Exp, 0).Sub(now) > maxAssertionLife:
		return nil, fail("exp is more than %s away", maxAssertionLife)
	case c.Nbf != 0 && now.Add(30*time.Second).Before(time.Unix(c.Nbf, 0)):
		return nil, fail("not yet valid")
	case c.JTI == "":
		return nil, fail("jti is required")
	}
	if e.deps.Replay != nil {
		fresh, err := e.deps.Replay.Remember(ctx, "exchange-jti:"+id+"\x00"+c.JTI, now, time.Unix(c.Exp, 0))
		if err != nil {
			return nil, err // the shared store cannot answer: fail closed, a server condition
		}
		if !fresh {
			return nil, fail("jti was already used")
		}
		return cl, nil
	}
	if !e.seen.add(id+"\x00"+c.JTI, time.Unix(c.Exp, 0), now) {
		return nil, fail("jti was already used")
	}
	return cl, nil
}

// jtiCache remembers assertion ids until they expire (replay defence).
type jtiCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

const maxJTIs = 100_000

// add records key until exp; false when it is already there (or the cache
// is full of live entries, which refuses rather than forgets).
func (j *jtiCache) add(key string, exp, now time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.m == nil {
		j.m = map[string]time.Time{}
	}
	if until, ok := j.m[key]; ok && now.Before(until) {
		return false
	}
	if len(j.m) >= maxJTIs {
		for k, until := range j.m {
			if !now.Before(until) {
				delete(j.m, k)
			}
		}
		if len(j.m) >= maxJTIs {
			return false
		}
	}
	j.m[key] = exp
	return true
}
