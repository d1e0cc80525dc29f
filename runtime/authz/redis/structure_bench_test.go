package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// BenchmarkStructureLoad is what a node pays once per structural change
// (group, nesting, mapping, role or permission write; not memberships):
// reading and indexing 10,000 groups, 1,000 roles and 3,000 permissions of
// the 100,000-user benchmark model. Logins wait for it only right after
// such a change.
func BenchmarkStructureLoad(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{srv.Addr()}, ContextTimeoutEnabled: true, ReadTimeout: 5 * time.Second})
	defer c.Close()
	ctx := context.Background()
	s, err := New(ctx, c, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Import(ctx, 0, authzgen.Generate(authzgen.BenchSpec(100000)), nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := s.readStructure(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(st.model.Document().Groups) != 10000 {
			b.Fatalf("%d groups", len(st.model.Document().Groups))
		}
	}
}
