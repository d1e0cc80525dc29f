package wasm

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestExpCPU(t *testing.T) {
	l := NewLoader(Options{})
	cfg := map[string]string{"blocked_ips": "10.0.0.1, 203.0.113.9", "days": "Mon,Tue,Wed,Thu,Fri,Sat,Sun"}
	for _, s := range []string{"deny-blocked-ips", "add-tenant-claim", "weekday-only"} {
		p := samples.MustBuild(t, s)
		r := load(t, l, runtime.ModuleSpec{Name: s, Path: p, Config: cfg, PoolSize: 1, Timeout: time.Second})
		ev := sampleEvent()
		var out runtime.Commands
		for i := 0; i < 200; i++ {
			out.Reset()
			r.Run(context.Background(), ev, &out)
		}
		const n = 3000
		c0, w0 := cpuNow(), time.Now()
		for i := 0; i < n; i++ {
			out.Reset()
			if err := r.Run(context.Background(), ev, &out); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: cpu %v/op wall %v/op", s, (cpuNow()-c0)/n, time.Since(w0)/n)
	}
}
