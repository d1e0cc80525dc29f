package redis_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
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
func loaded(b *testing.B, users int) (*redis.Store, *redistest.Server) { return loadedT(b, users) }

func loadedT(b testing.TB, users int) (*redis.Store, *redistest.Server) {
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
	doc := authzgen.Generate(authzgen.BenchSpec(users))
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
	settle(b, srv)
	rss, _ := srv.RSS()
	used, _ := srv.UsedMemory()
	b.Logf("users=%d memberships=%d: generate %v, import %v; redis used_memory %d MiB, rss %d MiB; loader peak RSS %d MiB",
		users, members, gen.Round(time.Millisecond), load.Round(time.Millisecond), used>>20, rss>>20, peakRSS()>>20)
	return s, srv
}

// settle waits until the server's keyspace table has finished growing.
// After a bulk load into a fresh server the table rehashes incrementally,
// and until it is done every key lookup probes two tables and moves a
// bucket: a login then costs ~15 µs more server time. Steady state is what
// the benchmarks measure, so cheap lookups drive the rehash to its end.
func settle(tb testing.TB, srv *redistest.Server) {
	tb.Helper()
	c := newClient(tb, srv.Addr())
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := c.Do(ctx, "DEBUG", "HTSTATS", "0").Text()
		if err != nil {
			tb.Fatal(err)
		}
		if !strings.Contains(st, "rehashing target") {
			return
		}
		pipe := c.Pipeline()
		for i := 0; i < 20000; i++ {
			pipe.Exists(ctx, "claimsmith:settle")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Logf("keyspace still rehashing after 3 minutes")
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
	s, srv := loaded(b, 100000)
	ctx := context.Background()
	q := authzgen.BenchQuery()
	p, err := s.ResolvePolicy(ctx, q)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	w := startWork(b, srv)
	for b.Loop() {
		if _, err := s.ResolvePolicy(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	w.report(b)
	b.ReportMetric(float64(len(p.Groups)), "groups")
	b.ReportMetric(float64(len(p.Roles)), "roles")
	b.ReportMetric(float64(len(p.Permissions)), "perms")
}

// BenchmarkResolveUsers is the growth check: the same user, with the same
// memberships, in stores of 1,000 and 100,000 users (and 1,000,000 with
// -redis.big). The per-login cost must differ by ≤ 20%. All stores are
// loaded first and measured in alternating rounds, so that load on the
// shared machine hits every size alike.
func BenchmarkResolveUsers(b *testing.B) {
	sizes := []int{1000, 100000}
	if *big {
		sizes = append(sizes, 1000000)
	}
	stores := make([]*redis.Store, len(sizes))
	srvs := make([]*redistest.Server, len(sizes))
	for i, n := range sizes {
		stores[i], srvs[i] = loaded(b, n)
	}
	// Let the loader's garbage go before timing: its GC would compete with
	// the servers for the two cores.
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(2 * time.Second)
	ctx := context.Background()
	q := authzgen.BenchQuery()
	for i := range stores { // structure snapshot loaded before timing
		if _, err := stores[i].ResolvePolicy(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		for i, n := range sizes {
			b.Run("users="+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				w := startWork(b, srvs[i])
				for b.Loop() {
					if _, err := stores[i].ResolvePolicy(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
				w.report(b)
			})
		}
	}
}

// BenchmarkImportFile1M is `claimsmith import` of a file with 1,000,000
// memberships (100,000 users × 10 groups): parse the extension's JSON and
// load it with the pipelined bulk loader. ns/op is the whole import (target
// ≤ 60 s); peak-MiB is the process's peak RSS (target ≤ 1 GiB), redis-MiB
// the server's RSS after the load. Run with -benchtime 1x.
func BenchmarkImportFile1M(b *testing.B) {
	var file bytes.Buffer
	if err := authz.Encode(&file, authzgen.Generate(authzgen.BenchSpec(100000)), authz.ExportOptions{}); err != nil {
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

// BenchmarkApplyMember is an admin write in the 100,000-user model: one
// member added to (then removed from) a group of about 3,000 members, each
// with WATCH, prefetch, MULTI/EXEC.
func BenchmarkApplyMember(b *testing.B) {
	s, _ := loaded(b, 100000)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		var op authz.Op = &authz.AddGroupMembers{GroupID: "group-09999", UserIDs: []string{"auth0|bench-writer"}}
		if i%2 == 0 {
			op = &authz.RemoveGroupMembers{GroupID: "group-09999", UserIDs: []string{"auth0|bench-writer"}}
		}
		if _, err := s.Apply(ctx, 0, op); err != nil {
			b.Fatal(err)
		}
	}
}

// work measures what a login costs beside the wall clock, which a busy
// shared machine makes noisy: this process's CPU time per op (cpu-ns/op)
// and the server's time in the login script per call (redis-ns/op, from
// INFO commandstats).
type work struct {
	srv *redistest.Server
	cpu time.Duration
}

func startWork(b *testing.B, srv *redistest.Server) *work {
	if _, err := srv.Do("CONFIG", "RESETSTAT"); err != nil {
		b.Fatal(err)
	}
	return &work{srv: srv, cpu: cpuTime()}
}

func (w *work) report(b *testing.B) {
	b.ReportMetric(float64((cpuTime()-w.cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	stats, err := w.srv.Do("INFO", "commandstats")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(stats, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:"); ok {
			for _, kv := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
					us, _ := strconv.ParseFloat(v, 64)
					b.ReportMetric(us*1000, "redis-ns/op")
				}
			}
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
