package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
)

// Algorithm is a JWS signing algorithm claimsmith can use for its keys.
type Algorithm string

// The supported algorithms. RS256 is the default because every OIDC client
// must support it (OIDC Core §15.1); the others are opt-in.
const (
	RS256 Algorithm = "RS256"
	PS256 Algorithm = "PS256"
	ES256 Algorithm = "ES256"
	EdDSA Algorithm = "EdDSA"
)

// Algorithms lists the supported algorithms in a stable order.
func Algorithms() []Algorithm { return []Algorithm{RS256, PS256, ES256, EdDSA} }

// ParseAlgorithm accepts one of the supported algorithm names.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range Algorithms() {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w: algorithm %q is not one of RS256, PS256, ES256, EdDSA", runtime.ErrInvalid, s)
}

// Token types, carried in the JWS "typ" header so one kind of token cannot be
// used as another (RFC 8725 §3.11).
const (
	TypeIDToken       = "JWT"
	TypeAccessToken   = "at+jwt"                  // RFC 9068 §2.1
	TypeIntrospection = "token-introspection+jwt" // RFC 9701 §5
)

var signerTypes = [...]string{TypeIDToken, TypeAccessToken, TypeIntrospection}

// KeyState is where a key is in its life: published before it signs (next),
// signing (active), still published for verification (retired), gone (dropped).
type KeyState string

// Key states.
const (
	StateNext    KeyState = "next"
	StateActive  KeyState = "active"
	StateRetired KeyState = "retired"
	StateDropped KeyState = "dropped"
)

// Key is one signing key. Its state is not stored: it follows from its
// ActivateAt, the next key's ActivateAt and the key set's retention, so a
// rotation writes exactly one new record and a crash can never leave two keys
// half-switched.
type Key struct {
	ID         string
	Algorithm  Algorithm
	CreatedAt  time.Time
	ActivateAt time.Time

	private crypto.Signer
	public  jose.JSONWebKey
	// signers are built once per token type: creating a go-jose Signer per
	// token would cost an allocation-heavy setup on the hot path.
	signers [len(signerTypes)]jose.Signer
}

// GenerateKey creates a key for alg. rsaBits applies to RS256/PS256 (0: 2048).
func GenerateKey(alg Algorithm, rsaBits int, createdAt, activateAt time.Time) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256, PS256:
		if rsaBits == 0 {
			rsaBits = 2048
		}
		if rsaBits < 2048 {
			return nil, fmt.Errorf("%w: RSA keys need at least 2048 bits, got %d", runtime.ErrInvalid, rsaBits)
		}
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		_, err = ParseAlgorithm(string(alg))
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return newKey(alg, priv, createdAt, activateAt)
}

// newKey checks that priv fits alg, derives the kid (the RFC 7638 thumbprint
// of the public key, so the same key always has the same kid) and prepares
// the signers.
func newKey(alg Algorithm, priv crypto.Signer, createdAt, activateAt time.Time) (*Key, error) {
	ok := false
	switch priv.(type) {
	case *rsa.PrivateKey:
		ok = alg == RS256 || alg == PS256
	case *ecdsa.PrivateKey:
		ok = alg == ES256 && priv.(*ecdsa.PrivateKey).Curve == elliptic.P256()
	case ed25519.PrivateKey:
		ok = alg == EdDSA
	}
	if !ok {
		return nil, fmt.Errorf("%w: a %T cannot sign %s", runtime.ErrInvalid, priv, alg)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: string(alg), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	k := &Key{ID: pub.KeyID, Algorithm: alg, CreatedAt: createdAt.UTC(), ActivateAt: activateAt.UTC(), private: priv, public: pub}
	for i, typ := range signerTypes {
		s, err := jose.NewSigner(
			jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: priv, KeyID: k.ID}},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			return nil, fmt.Errorf("key %s: signer: %w", k.ID, err)
		}
		k.signers[i] = s
	}
	return k, nil
}

// PublicJWK is the key's public half as published in the JWKS.
func (k *Key) PublicJWK() jose.JSONWebKey { return k.public }

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.private.Public() }

// Signer returns the cached signer that stamps typ into the header.
func (k *Key) Signer(typ string) jose.Signer {
	for i, t := range signerTypes {
		if t == typ {
			return k.signers[i]
		}
	}
	return nil
}

// storedKey is the persisted form of a key. Stores keep it as one record
// readable only by the owner (it holds the private key).
type storedKey struct {
	KID        string    `json:"kid"`
	Alg        Algorithm `json:"alg"`
	CreatedAt  time.Time `json:"created_at"`
	ActivateAt time.Time `json:"activate_at"`
	PrivateKey string    `json:"private_key"` // PKCS#8 PEM
}

// MarshalKey encodes a key, private half included, for a KeyStore.
func MarshalKey(k *Key) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.ID, err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return json.MarshalIndent(storedKey{KID: k.ID, Alg: k.Algorithm, CreatedAt: k.CreatedAt, ActivateAt: k.ActivateAt, PrivateKey: string(p)}, "", "  ")
}

// UnmarshalKey decodes what MarshalKey wrote. The kid is recomputed from the
// key and must match the recorded one, so a record edited by hand or swapped
// between files is caught.
func UnmarshalKey(b []byte) (*Key, error) {
	var sk storedKey
	if err := json.Unmarshal(b, &sk); err != nil {
		return nil, fmt.Errorf("%w: key record: %v", runtime.ErrInvalid, err)
	}
	if _, err := ParseAlgorithm(string(sk.Alg)); err != nil {
		return nil, fmt.Errorf("key %q: alg: %w", sk.KID, err)
	}
	blk, _ := pem.Decode([]byte(sk.PrivateKey))
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: key %q: private_key is not a PKCS#8 PEM block", runtime.ErrInvalid, sk.KID)
	}
	priv, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: private_key: %v", runtime.ErrInvalid, sk.KID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key %q: private_key of type %T cannot sign", runtime.ErrInvalid, sk.KID, priv)
	}
	k, err := newKey(sk.Alg, signer, sk.CreatedAt, sk.ActivateAt)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", sk.KID, err)
	}
	if k.ID != sk.KID {
		return nil, fmt.Errorf("%w: key %q: kid does not match the key (thumbprint %s)", runtime.ErrInvalid, sk.KID, k.ID)
	}
	return k, nil
}
