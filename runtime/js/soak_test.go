package js

import (
	"context"
	"os"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestJSLoginsHeapFlat runs many logins through a pooled JavaScript Action
// (20,000 by default; CLAIMSMITH_JS_SOAK_LOGINS=100000 for the issue's
// full run) and samples the host heap every tenth of the run: the second
// half never rises above the first half's peak by more than a margin.
func TestJSLoginsHeapFlat(t *testing.T) {
	total := 20_000
	if v, err := strconv.Atoi(os.Getenv("CLAIMSMITH_JS_SOAK_LOGINS")); err == nil && v >= 1000 {
		total = v
	}
	if testing.Short() {
		total = 2_000
	}
	window := total / 10
	e := newTestEngine(t, Options{Logger: testLogger(t), PoolSize: 1})
	r := loadJS(t, e, runtime.ModuleSpec{Name: "soak", Path: writeFile(t, "soak.js", benchAction)})
	ev := benchEvent()
	ctx := context.Background()
	var out runtime.Commands
	var heaps []uint64
	start := time.Now()
	for w := 0; w < 10; w++ {
		for i := 0; i < window; i++ {
			out.Reset()
			if err := r.Run(ctx, ev, &out); err != nil {
				t.Fatalf("login %d: %v", w*window+i, err)
			}
		}
		goruntime.GC()
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		heaps = append(heaps, ms.HeapAlloc>>10)
	}
	t.Logf("%d logins in %v; host heap KiB per tenth: %v", total, time.Since(start).Round(time.Millisecond), heaps)
	var h1, h2 uint64
	for i, h := range heaps {
		if i < len(heaps)/2 {
			h1 = max(h1, h)
		} else {
			h2 = max(h2, h)
		}
	}
	if h2 > h1+h1/4+1024 {
		t.Errorf("host heap grows: first half peak %d KiB, second half %d KiB", h1, h2)
	}
	if st := r.pool.rule.Status(); st.Failures != 0 || st.Discarded != 0 {
		t.Errorf("engine status %+v", st)
	}
}
