package redis_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// big enables the 1,000,000-user case of the growth check (10M memberships:
// about a minute to generate and load, a few GiB of RAM). Run it with
//
//	go test -run XXX -bench ResolveUsers -benchtime 2s ./runtime/authz/redis -redis.big
var big = flag.Bool("redis.big", os.Getenv("CLAIMSMITH_BENCH_BIG") != "", "include the 1,000,000-user model in BenchmarkResolveUsers")

// loaded starts a server and imports the benchmark model of n users with the
// pipelined bulk loader, logging load time and memory.
func loaded(b *testing.B, users int) (*redis.Store, *redistest.Server) {
	b.Helper()
	srv := redistest.Start(b, redistest.Options{})
	c := newClient(b, srv.Addr())
	ctx := context.Background()
	s, err := redis.New(ctx, c, redis.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	start := time.Now()
	doc := authztest.Generate(authztest.BenchSpec(users))
	gen := time.Since(start)
	members := 0
	for _, g := range doc.Groups {
		members += len(g.Members)
	}
	start = time.Now()
	last := time.Now()
	if _, err := s.Import(ctx, 0, doc, func(done, total int) {
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			b.Logf("import: %d/%d commands (%.0f%%)", done, total, 100*float64(done)/float64(total))
		}
	}); err != nil {
		b.Fatal(err)
	}
	load := time.Since(start)
	rss, _ := srv.RSS()
	used, _ := srv.UsedMemory()
	b.Logf("users=%d memberships=%d: generate %v, import %v; redis used_memory %d MiB, rss %d MiB; loader peak RSS %d MiB",
		users, members, gen.Round(time.Millisecond), load.Round(time.Millisecond), used>>20, rss>>20, peakRSS()>>20)
	return s, srv
}

// peakRSS is this process's VmHWM in bytes (Linux), 0 elsewhere.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkResolvePolicy is the login-path read from the Redis store on a
// cache miss: one EVALSHA round trip resolving the benchmark user (10 direct
// groups, their ancestors, 2 mapped IdP groups, 2 direct roles, audience) in
// the 100,000-user model.
func BenchmarkResolvePolicy(b *testing.B) {
	s, _ := loaded(b, 100000)
	ctx := context.Background()
	q := authztest.BenchQuery()
	p, err := s.ResolvePolicy(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ResolvePolicy(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p.Groups)), "groups")
	b.ReportMetric(float64(len(p.Roles)), "roles")
	b.ReportMetric(float64(len(p.Permissions)), "perms")
}

// BenchmarkResolveUsers is the growth check: the same user, with the same
// memberships, in stores of 1,000 and 1,000,000 users (the latter with
// -redis.big). The per-login cost must differ by ≤ 20%.
func BenchmarkResolveUsers(b *testing.B) {
	sizes := []int{1000, 100000}
	if *big {
		sizes = append(sizes, 1000000)
	}
	for _, n := range sizes {
		b.Run("users="+strconv.Itoa(n), func(b *testing.B) {
			s, _ := loaded(b, n)
			ctx := context.Background()
			q := authztest.BenchQuery()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ResolvePolicy(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			runtime.GC()
		})
	}
}

// BenchmarkImportFile1M is `claimsmith import` of a file with 1,000,000
// memberships (100,000 users × 10 groups): parse the extension's JSON and
// load it with the pipelined bulk loader. ns/op is the whole import (target
// ≤ 60 s); peak-MiB is the process's peak RSS (target ≤ 1 GiB), redis-MiB
// the server's RSS after the load. Run with -benchtime 1x.
func BenchmarkImportFile1M(b *testing.B) {
	var file bytes.Buffer
	if err := authz.Encode(&file, authztest.Generate(authztest.BenchSpec(100000)), authz.ExportOptions{}); err != nil {
		b.Fatal(err)
	}
	raw := file.Bytes()
	srv := redistest.Start(b, redistest.Options{})
	c := newClient(b, srv.Addr())
	ctx := context.Background()
	s, err := redis.New(ctx, c, redis.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	runtime.GC()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		doc, err := authz.ParseDocument(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Import(ctx, 0, doc, nil); err != nil {
			b.Fatal(err)
		}
	}
	rss, _ := srv.RSS()
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "redis-MiB")
	b.Logf("file %d MiB", len(raw)>>20)
}

// BenchmarkApplyAddMember is an admin write: one member added with WATCH,
// prefetch, MULTI/EXEC (four round trips) in the 1,000-user model.
func BenchmarkApplyAddMember(b *testing.B) {
	s, _ := loaded(b, 1000)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := s.Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "group-00001", UserIDs: []string{fmt.Sprintf("u-%d", i)}}); err != nil {
			b.Fatal(err)
		}
	}
}
