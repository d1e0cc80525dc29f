package wasm

import (
	goruntime "runtime"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestGCWhileGuestSpins: the collector can stop the world while a guest
// without memory spins, and the spinning call is still stopped on time.
func TestGCWhileGuestSpins(t *testing.T) {
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "loop", Path: watModule(t, "loop", infiniteLoop), Timeout: 300 * time.Millisecond, PoolSize: 1})
	done := make(chan error, 1)
	go func() {
		_, err := runRule(t, r, sampleEvent())
		done <- err
	}()
	// The call took the only instance: the guest spins (or is about to).
	waitFor(t, slack, "the call to start", func() bool { return len(r.pool) == 0 })
	for i := 0; i < 5; i++ {
		start := time.Now()
		goruntime.GC()
		if d := time.Since(start); d > slack {
			t.Fatalf("runtime.GC took %v while a guest spun", d)
		}
	}
	select {
	case err := <-done:
		wantRuleError(t, err, "loop", runtime.ErrTimeout, "did not return within")
	case <-time.After(300*time.Millisecond + slack):
		t.Fatal("the spinning call was not answered on time")
	}
}
