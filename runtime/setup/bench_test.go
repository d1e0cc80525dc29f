package setup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// BenchmarkServeLoginPolicy is a login's policy read as serve wires it with
// store.backend redis: the policy cache over the metered Redis store, in a
// model of 1,000 generated users (10 groups each, 10,000 groups).
//   - near-hit: answered in-process (the common case);
//   - redis-hit: near cache off, answered by the shared Redis cache (another
//     node resolved it);
//   - miss: a query nobody resolved yet: the store's login script (one round
//     trip) and the resolution, then the Redis cache write.
func BenchmarkServeLoginPolicy(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	ctx := context.Background()
	cfg := filepath.Join(b.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("store:\n  backend: redis\nredis:\n  addrs: [%s]\n", srv.Addr())), 0o600); err != nil {
		b.Fatal(err)
	}
	lc, err := Load(cfg)
	if err != nil {
		b.Fatal(err)
	}
	bk, err := OpenBackends(lc, Env{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	st, err := bk.Store(ctx, false)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.(Importer).Import(ctx, 0, authzgen.Generate(authzgen.BenchSpec(1000)), nil); err != nil {
		b.Fatal(err)
	}
	reg, metrics, err := newServeMetrics()
	if err != nil {
		b.Fatal(err)
	}
	dc, err := newDegradedCounters(reg)
	if err != nil {
		b.Fatal(err)
	}
	ms := newMeteredStore(st, metrics, dc)
	q := authzgen.BenchQuery()
	for _, c := range []struct {
		name     string
		nearSize int
		miss     bool
	}{{"near-hit", 0, false}, {"redis-hit", -1, false}, {"miss", -1, true}} {
		b.Run(c.name, func(b *testing.B) {
			lc.Cache.NearSize = c.nearSize
			pc, err := bk.policyCache(ctx, cacheSource{ms, st}, reg)
			if err != nil {
				b.Fatal(err)
			}
			if err := pc.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer pc.Close()
			want, err := pc.ResolvePolicy(ctx, q)
			if err != nil || len(want.Groups) == 0 {
				b.Fatalf("warm-up: %+v %v", want, err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				qq := q
				if c.miss {
					// A new audience each time: a key nobody cached.
					i++
					qq.Audience = q.Audience + strconv.Itoa(i)
				}
				p, err := pc.ResolvePolicy(ctx, qq)
				if err != nil || len(p.Groups) != len(want.Groups) {
					b.Fatalf("%+v %v", p, err)
				}
			}
		})
	}
}
