package js

import (
	"context"
	"os"
	"path/filepath"
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
