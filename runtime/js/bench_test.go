package js

import (
	"context"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// benchAction is a typical post-login Action: reads the user, the client
// and the authorization block, sets claims and a metadata key.
const benchAction = `exports.onExecutePostLogin = async (event, api) => {
  const ns = 'https://example.com/';
  if (!event.user.email_verified) return api.access.deny('verify your e-mail');
  api.idToken.setCustomClaim(ns + 'roles', event.authorization.roles);
  api.accessToken.setCustomClaim(ns + 'tenant', event.client.metadata.tier || 'default');
  if (event.stats.logins_count > 5) api.user.setAppMetadata('regular', true);
};`

func benchEvent() *runtime.Event {
	ev := baseEvent()
	ev.Authorization = &runtime.Authorization{Groups: []string{"staff"}, Roles: []string{"viewer", "editor"}, Permissions: []string{"read:docs"}}
	return ev
}

func writeFile(t testing.TB, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// BenchmarkJSLogin: one login through a JavaScript Action from the warm
// engine pool, and the baseline the pool beats: a fresh engine instance
// for every login. Targets (issue 18): pooled p50 ≤ 500 µs, p99 ≤ 2 ms;
// instance-per-call ÷ pooled ≥ 20.
func BenchmarkJSLogin(b *testing.B) {
	e := newTestEngine(b, Options{PoolSize: 1})
	r := loadJS(b, e, runtime.ModuleSpec{Name: "bench", Path: writeFile(b, "bench.js", benchAction), Timeout: 5 * time.Second})
	ctx := context.Background()
	ev := benchEvent()
	b.Run("action/pooled", func(b *testing.B) {
		var out runtime.Commands
		lat := make([]time.Duration, 0, 4096)
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			out.Reset()
			start := time.Now()
			if err := r.Run(ctx, ev, &out); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportCPU(b, cpu)
		reportPercentiles(b, lat)
	})
	b.Run("action/instance-per-call", func(b *testing.B) {
		var out runtime.Commands
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			// What a host without a pool does: a fresh engine (Go runtime,
			// goja, prelude), the rule compiled, one call.
			if err := r.pool.rule.Recycle(ctx); err != nil {
				b.Fatal(err)
			}
			out.Reset()
			if err := r.Run(ctx, ev, &out); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
}

// BenchmarkJSStartupWarmCache: what a restart costs with the compiled engine
// in the on-disk cache: a new Engine, one rule loaded (engine module read
// and checked, compiled code read from disk, a pool of GOMAXPROCS instances,
// the rule compiled). Target ≤ 1.5 s.
func BenchmarkJSStartupWarmCache(b *testing.B) {
	path := writeFile(b, "bench.js", benchAction)
	warm := New(Options{})
	r, err := warm.LoadModule(context.Background(), runtime.ModuleSpec{Name: "bench", Path: path})
	if err != nil {
		b.Fatal(err)
	}
	_ = r.(*Rule).Cleanup()
	_ = warm.Close(context.Background())
	b.ResetTimer()
	for b.Loop() {
		e := New(Options{})
		r, err := e.LoadModule(context.Background(), runtime.ModuleSpec{Name: "bench", Path: path})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = r.(*Rule).Cleanup()
		_ = e.Close(context.Background())
		b.StartTimer()
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// rss is the process's resident set size (Linux).
func rss(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestEngineMemory measures resident memory: per warm engine instance
// (target ≤ 40 MiB) and for ten JavaScript rules on a pool of two
// instances (target ≤ 200 MiB in total, the rules sharing the pool).
func TestEngineMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory is measured without -race and -short")
	}
	ctx := context.Background()
	// Warm the compiled module (in memory and on disk) first: its code is
	// shared by every instance and not what an instance costs.
	warm := newTestEngine(t, Options{PoolSize: 1})
	w := loadJS(t, warm, runtime.ModuleSpec{Name: "warm", Path: writeFile(t, "w.js", benchAction)})
	if _, err := run(t, w, benchEvent()); err != nil {
		t.Fatal(err)
	}
	goruntimeGC()
	base := rss(t)
	const n = 4
	e := newTestEngine(t, Options{PoolSize: n})
	r := loadJS(t, e, runtime.ModuleSpec{Name: "bench", Path: writeFile(t, "bench.js", benchAction)})
	// Warm every instance: concurrent calls land on different instances.
	done := make(chan error, n)
	for range n * 4 {
		go func() { _, err := run(t, r, benchEvent()); done <- err }()
		go func() { done <- nil }()
	}
	for range n * 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	goruntimeGC()
	per := (rss(t) - base) / n
	t.Logf("RSS per warm engine instance: %d MiB (pool of %d; module code shared)", per>>20, n)
	if per > 40<<20 {
		t.Errorf("RSS per warm instance %d MiB, over 40 MiB", per>>20)
	}

	base = rss(t)
	ten := newTestEngine(t, Options{PoolSize: 2})
	for i := range 10 {
		r := loadJS(t, ten, runtime.ModuleSpec{Name: "r" + strconv.Itoa(i), Path: writeFile(t, "r"+strconv.Itoa(i)+".js", benchAction)})
		for range 4 {
			if _, err := run(t, r, benchEvent()); err != nil {
				t.Fatal(err)
			}
		}
	}
	goruntimeGC()
	total := rss(t) - base
	t.Logf("RSS for 10 JS rules on a pool of 2: %d MiB", total>>20)
	if total > 200<<20 {
		t.Errorf("10 rules take %d MiB, over 200 MiB", total>>20)
	}
	_ = ctx
}

func goruntimeGC() { goruntime.GC() }
