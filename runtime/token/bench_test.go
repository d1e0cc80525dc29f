package token

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// Benchmarks for the token hot paths. Compare with benchstat; the targets
// (issue 5): Mint/<alg>/mint ≤ 1.10 × Mint/<alg>/raw-sign (go-jose
// Signer.Sign + CompactSerialize of the very same payload bytes), and
// Introspect/<alg> ≤ 1.3 × Verify/<alg>.
//
//	go test -run '^$' -bench . -benchtime 2s -count 6 ./runtime/token/ | tee new.txt

// loginClaims is a ~1 KB custom claim set, as the authorization rule writes.
func loginClaims() (id, access runtime.Claims) {
	var perms []string
	for i := range 24 {
		perms = append(perms, fmt.Sprintf("read:collection-%02d", i), fmt.Sprintf("write:collection-%02d", i))
	}
	groups := []string{"engineering", "platform", "on-call", "staff"}
	roles := []string{"editor", "viewer", "deployer"}
	id = runtime.Claims{{Name: ns + "groups", Value: groups}, {Name: ns + "roles", Value: roles}}
	access = runtime.Claims{{Name: ns + "groups", Value: groups}, {Name: ns + "roles", Value: roles}, {Name: ns + "permissions", Value: perms}}
	return id, access
}

func payloadOf(b *testing.B, tok string) []byte {
	p, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkMint(b *testing.B) {
	ctx := context.Background()
	idc, atc := loginClaims()
	for _, alg := range Algorithms() {
		f := newFixture(b, alg)
		idReq := IDTokenRequest{Subject: "auth0|5f7c8ec7c33c6c004bbafe82", ClientID: "app1", Nonce: "n-0S6_WzA2Mj", Claims: idc}
		atReq := AccessTokenRequest{Subject: "auth0|5f7c8ec7c33c6c004bbafe82", ClientID: "app1", Audience: "https://api.example.com",
			Scopes: []string{"openid", "profile", "email", "read:docs"}, Claims: atc}
		id, err := f.minter.MintIDToken(ctx, idReq)
		if err != nil {
			b.Fatal(err)
		}
		at, err := f.minter.MintAccessToken(ctx, atReq)
		if err != nil {
			b.Fatal(err)
		}
		idPayload, atPayload := payloadOf(b, id.Token), payloadOf(b, at.Token)
		key, _ := f.keys.Active()
		b.Run(string(alg)+"/raw-sign", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(idPayload) + len(atPayload)))
			for b.Loop() {
				for _, p := range [...]struct {
					typ string
					b   []byte
				}{{TypeIDToken, idPayload}, {TypeAccessToken, atPayload}} {
					jws, err := key.Signer(p.typ).Sign(p.b)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := jws.CompactSerialize(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(string(alg)+"/mint", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(idPayload) + len(atPayload)))
			for b.Loop() {
				if _, err := f.minter.MintIDToken(ctx, idReq); err != nil {
					b.Fatal(err)
				}
				if _, err := f.minter.MintAccessToken(ctx, atReq); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	_, atc := loginClaims()
	for _, alg := range Algorithms() {
		f := newFixture(b, alg)
		tok := f.access(b, AccessTokenRequest{Scopes: []string{"openid", "read:docs"}, Claims: atc})
		b.Run(string(alg), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.verify.Verify(ctx, tok, VerifyOptions{Kind: KindAccessToken}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIntrospect(b *testing.B) {
	ctx := context.Background()
	_, atc := loginClaims()
	for _, alg := range Algorithms() {
		f := newIntroFixture(b, alg)
		tok := f.access(b, AccessTokenRequest{Scopes: []string{"openid", "read:docs"}, Claims: atc})
		b.Run(string(alg), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ans, err := f.intro.Introspect(ctx, rs, IntrospectRequest{Token: tok})
				if err != nil || !ans.Active {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIntrospectLive(b *testing.B) {
	ctx := context.Background()
	_, atc := loginClaims()
	f := newIntroFixture(b, ES256)
	tok := f.access(b, AccessTokenRequest{Audience: "app1", Claims: atc})
	b.ReportAllocs()
	for b.Loop() {
		ans, err := f.intro.Introspect(ctx, rs, IntrospectRequest{Token: tok, Live: true})
		if err != nil || !ans.Active {
			b.Fatal(err)
		}
	}
}

// The paired benchmarks alternate the two operations inside one loop and
// time each, so a neighbour's load burst (these machines are shared) hits
// both sides alike; they report the ratio the targets are stated in.

func BenchmarkMintVsRawSign(b *testing.B) {
	ctx := context.Background()
	idc, atc := loginClaims()
	for _, alg := range Algorithms() {
		f := newFixture(b, alg)
		idReq := IDTokenRequest{Subject: "auth0|5f7c8ec7c33c6c004bbafe82", ClientID: "app1", Nonce: "n-0S6_WzA2Mj", Claims: idc}
		atReq := AccessTokenRequest{Subject: "auth0|5f7c8ec7c33c6c004bbafe82", ClientID: "app1", Audience: "https://api.example.com",
			Scopes: []string{"openid", "profile", "email", "read:docs"}, Claims: atc}
		id, _ := f.minter.MintIDToken(ctx, idReq)
		at, _ := f.minter.MintAccessToken(ctx, atReq)
		idPayload, atPayload := payloadOf(b, id.Token), payloadOf(b, at.Token)
		key, _ := f.keys.Active()
		b.Run(string(alg), func(b *testing.B) {
			b.ReportAllocs()
			var raw, mint time.Duration
			n := 0
			for b.Loop() {
				t0 := time.Now()
				for _, p := range [...]struct {
					typ string
					b   []byte
				}{{TypeIDToken, idPayload}, {TypeAccessToken, atPayload}} {
					jws, err := key.Signer(p.typ).Sign(p.b)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := jws.CompactSerialize(); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				if _, err := f.minter.MintIDToken(ctx, idReq); err != nil {
					b.Fatal(err)
				}
				if _, err := f.minter.MintAccessToken(ctx, atReq); err != nil {
					b.Fatal(err)
				}
				raw += t1.Sub(t0)
				mint += time.Since(t1)
				n++
			}
			b.ReportMetric(float64(raw.Nanoseconds())/float64(n), "raw-ns/pair")
			b.ReportMetric(float64(mint.Nanoseconds())/float64(n), "mint-ns/pair")
			b.ReportMetric(float64(mint)/float64(raw), "mint/raw")
		})
	}
}

func BenchmarkIntrospectVsVerify(b *testing.B) {
	ctx := context.Background()
	_, atc := loginClaims()
	for _, alg := range Algorithms() {
		f := newIntroFixture(b, alg)
		tok := f.access(b, AccessTokenRequest{Scopes: []string{"openid", "read:docs"}, Claims: atc})
		b.Run(string(alg), func(b *testing.B) {
			b.ReportAllocs()
			var ver, intro time.Duration
			n := 0
			for b.Loop() {
				t0 := time.Now()
				if _, err := f.verify.Verify(ctx, tok, VerifyOptions{Kind: KindAccessToken}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if ans, err := f.intro.Introspect(ctx, rs, IntrospectRequest{Token: tok}); err != nil || !ans.Active {
					b.Fatal(err)
				}
				ver += t1.Sub(t0)
				intro += time.Since(t1)
				n++
			}
			b.ReportMetric(float64(ver.Nanoseconds())/float64(n), "verify-ns/op")
			b.ReportMetric(float64(intro.Nanoseconds())/float64(n), "introspect-ns/op")
			b.ReportMetric(float64(intro)/float64(ver), "introspect/verify")
		})
	}
}

// BenchmarkMintOverhead is everything minting adds to signing for one login
// (two claim sets written, a jti drawn, the active key looked up): the gap
// between Mint/<alg>/mint and Mint/<alg>/raw-sign, measured on its own.
func BenchmarkMintOverhead(b *testing.B) {
	idc, atc := loginClaims()
	f := newFixture(b, EdDSA)
	idReq := IDTokenRequest{Subject: "auth0|5f7c8ec7c33c6c004bbafe82", ClientID: "app1", Nonce: "n-0S6_WzA2Mj", Claims: idc}
	atReq := AccessTokenRequest{Subject: "auth0|5f7c8ec7c33c6c004bbafe82", ClientID: "app1", Audience: "https://api.example.com",
		Scopes: []string{"openid", "profile", "email", "read:docs"}, Claims: atc}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.keys.Active(); err != nil {
			b.Fatal(err)
		}
		now := f.clock.Now()
		buf := f.minter.getBuf()
		p, err := f.minter.idPayload((*buf)[:0], idReq, now, now.Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		*buf = p
		f.minter.putBuf(buf)
		jti, err := newJTI()
		if err != nil {
			b.Fatal(err)
		}
		buf = f.minter.getBuf()
		if p, err = f.minter.accessPayload((*buf)[:0], atReq, atReq.Audience, jti, now, now.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		*buf = p
		f.minter.putBuf(buf)
	}
}
