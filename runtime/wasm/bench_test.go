package wasm

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// BenchmarkLogin measures one login through each sample rule from a warm pool
// (timeouts enforced), and, as the baseline the pool exists to beat, the Go
// rule instantiated for every call. Targets: WAT and AssemblyScript ≤ 50 µs,
// Go ≤ 250 µs, pooled Go ≥ 20× faster than per-call instantiation.
func BenchmarkLogin(b *testing.B) {
	l := newTestLoader(Options{})
	cfg := map[string]string{"blocked_ips": "10.0.0.1, 203.0.113.9", "days": "Mon,Tue,Wed,Thu,Fri,Sat,Sun"}
	for _, tc := range []struct{ bench, sample string }{
		{"wat/deny-blocked-ips", "deny-blocked-ips"},
		{"assemblyscript/add-tenant-claim", "add-tenant-claim"},
		{"go/weekday-only/pooled", "weekday-only"},
	} {
		p := samples.MustBuild(b, tc.sample)
		r := load(b, l, runtime.ModuleSpec{Name: tc.sample, Path: p, Config: cfg, PoolSize: 1, Timeout: time.Second})
		b.Run(tc.bench, func(b *testing.B) {
			ev := sampleEvent()
			var out runtime.Commands
			ctx := context.Background()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				out.Reset()
				if err := r.Run(ctx, ev, &out); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
	b.Run("go/weekday-only/instance-per-call", func(b *testing.B) {
		p := samples.MustBuild(b, "weekday-only")
		r := load(b, l, runtime.ModuleSpec{Name: "weekday-only", Path: p, Config: cfg, PoolSize: 1, Timeout: time.Second})
		ev := sampleEvent()
		var out runtime.Commands
		ctx := context.Background()
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			// What a host without a pool does: instantiate (and initialize
			// the Go runtime), call once, close.
			in, err := r.newInstance(ctx)
			if err != nil {
				b.Fatal(err)
			}
			old := <-r.pool
			r.pool <- in
			out.Reset()
			if err := r.Run(ctx, ev, &out); err != nil {
				b.Fatal(err)
			}
			<-r.pool
			r.pool <- old
			in.close()
		}
		reportCPU(b, cpu)
	})
}

// cpuTime is the process's CPU time (user + system). The machines running
// the benchmarks are shared, so wall time per op (ns/op) moves with the
// neighbours' load; CPU time per op (cpu-ns/op) is what a login costs.
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
