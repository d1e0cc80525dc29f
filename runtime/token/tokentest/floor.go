package tokentest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime/token"
)

// FloorSigner is the plain go-jose signer the login benchmarks' floor
// signs with: a fresh P-256 key for ES256, RSA 2048 (claimsmith's default
// size) for RS256, typ JWT. The floor is what a login cannot cost less
// than, so it uses the library directly, not claimsmith's minter.
func FloorSigner(tb testing.TB, alg token.Algorithm) jose.Signer {
	tb.Helper()
	var sk jose.SigningKey
	switch alg {
	case token.ES256:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		sk = jose.SigningKey{Algorithm: jose.ES256, Key: key}
	case token.RS256:
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			tb.Fatal(err)
		}
		sk = jose.SigningKey{Algorithm: jose.RS256, Key: key}
	default:
		tb.Fatalf("floor: no %s", alg)
	}
	signer, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	return signer
}
