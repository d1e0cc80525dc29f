package cache_test

import (
	"context"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/cache"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// BenchmarkNearHit is the login path when the policy is in the in-process
// cache (target ≤ 1 µs).
func BenchmarkNearHit(b *testing.B) {
	st := newStore(b)
	c := newCache(b, st, cache.Options{})
	ctx := context.Background()
	q := authz.PolicyQuery{UserID: "auth0|alice", ClientID: "portal-client", Connection: "corp-ad", IdPGroups: []string{"Engineering", "Domain Admins"}}
	if _, err := c.ResolvePolicy(ctx, q); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.ResolvePolicy(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNearHitParallel checks the near cache under contention.
func BenchmarkNearHitParallel(b *testing.B) {
	st := newStore(b)
	c := newCache(b, st, cache.Options{})
	ctx := context.Background()
	if _, err := c.ResolvePolicy(ctx, alice); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.ResolvePolicy(ctx, alice); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRedisHit is a near-cache miss answered by the shared Redis cache
// (one GET round trip).
func BenchmarkRedisHit(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	st := newStore(b)
	c := newCache(b, st, cache.Options{Client: client(b, srv), NearSize: -1})
	ctx := context.Background()
	if _, err := c.ResolvePolicy(ctx, alice); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.ResolvePolicy(ctx, alice); err != nil {
			b.Fatal(err)
		}
	}
}
