package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/redistest"
	tokenredis "github.com/claimsmith/claimsmith/runtime/token/redis"
)

// BenchmarkIsRevokedIssued is introspection's revocation check on a real
// Redis: the entry and the loss marker in one pipelined round trip.
func BenchmarkIsRevokedIssued(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	ctx := context.Background()
	c := client(b, srv.Addr())
	l := tokenredis.NewRevocationList(c, tokenredis.RevocationOptions{})
	if err := l.Initialise(ctx); err != nil {
		b.Fatal(err)
	}
	if err := l.Revoke(ctx, "jti-revoked", time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	issued := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := l.IsRevokedIssued(ctx, "jti-revoked", issued); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
