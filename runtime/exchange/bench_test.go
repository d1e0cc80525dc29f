package exchange

import (
	"context"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// BenchmarkExchange measures a full token exchange (client authentication,
// upstream verification through runtime/guard, event, pipeline stand-in,
// access + ID token minting, response) against its floor in the same loop:
// one upstream verify and two mints. It reports ns/exchange, ns/floor and
// their ratio (acceptance: ≤ 1.2). The pipeline is the recording stand-in,
// so the ratio is the exchange's own overhead; the pipeline's cost is
// measured by runtime's benchmarks.
func BenchmarkExchange(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.SubjectRate = RateConfig{PerMinute: 1 << 30, Burst: 1 << 30} })
	f.enr.res = runtime.Result{AccessTokenClaims: runtime.Claims{{Name: "https://example.com/roles", Value: []string{"editor"}}},
		IDTokenClaims: runtime.Claims{{Name: "https://example.com/groups", Value: []string{"eng"}}}}
	ctx := context.Background()
	sub := f.op.idToken(b, f.clock.Now(), nil)
	req := Request{GrantType: GrantTokenExchange, SubjectToken: sub, SubjectTokenType: TokenTypeIDToken, Scope: []string{"openid"}}
	cred := Credentials{ClientID: "app", Secret: appSecret}
	v := f.ex.issuers[f.op.issuer()].verifier
	// Warm the JWKS cache and the pools.
	if _, err := f.ex.Token(ctx, f.enr, cred, req, Meta{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var exch, floor time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := f.ex.Token(ctx, f.enr, cred, req, Meta{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := v.Verify(ctx, sub); err != nil {
			b.Fatal(err)
		}
		if _, err := f.minter.MintAccessToken(ctx, token.AccessTokenRequest{Subject: "alice", ClientID: "app", Audience: "https://api.example.com",
			Scopes: []string{"openid"}, Claims: f.enr.res.AccessTokenClaims}); err != nil {
			b.Fatal(err)
		}
		if _, err := f.minter.MintIDToken(ctx, token.IDTokenRequest{Subject: "alice", ClientID: "app", Claims: f.enr.res.IDTokenClaims}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		exch += t1.Sub(t0)
		floor += t2.Sub(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(exch.Nanoseconds())/n, "ns/exchange")
	b.ReportMetric(float64(floor.Nanoseconds())/n, "ns/floor")
	b.ReportMetric(float64(exch)/float64(floor), "ratio")
}
