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
// (5,000 by default; `make soak-js` runs the 100,000 under -race,
// CLAIMSMITH_JS_SOAK_LOGINS sets any number) and samples the host heap
// after a collection every tenth of the run: over the second half it may
// grow by no more than maxGrowthPerLogin bytes a login. The bound is by
// logins, not time, so a slow machine runs longer and judges the same.
func TestJSLoginsHeapFlat(t *testing.T) {
	total := 5_000
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
		heaps = append(heaps, ms.HeapAlloc)
	}
	kib := make([]uint64, len(heaps))
	for i, h := range heaps {
		kib[i] = h >> 10
	}
	t.Logf("%d logins in %v; host heap KiB per tenth: %v", total, time.Since(start).Round(time.Millisecond), kib)
	// A leak of this much a login is 6 MiB over the 100,000-login run;
	// the heap after a collection varies by a few KiB.
	const maxGrowthPerLogin = 64
	mid, last := heaps[len(heaps)/2-1], heaps[len(heaps)-1]
	if last > mid && (last-mid)/uint64(total/2) > maxGrowthPerLogin {
		t.Errorf("host heap grows by %d bytes a login over the second half (%d KiB to %d KiB)", (last-mid)/uint64(total/2), mid>>10, last>>10)
	}
	if st := r.pool.rule.Status(); st.Failures != 0 || st.Discarded != 0 {
		t.Errorf("engine status %+v", st)
	}
}
