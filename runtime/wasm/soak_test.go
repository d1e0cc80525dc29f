package wasm

import (
	"context"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestPooledGoRule100kLogins runs 100,000 logins through one pooled
// instance of a Go rule that allocates on every call, sampling host heap and
// guest linear memory every 10,000 calls. With the guest's clocks real, its
// garbage collector keeps up: both stay flat, and no call stalls. (With
// wazero's default fake clock a pooled Go guest stopped collecting after
// ~57k calls and ran into its memory cap.)
func TestPooledGoRule100kLogins(t *testing.T) {
	const (
		total  = 100_000
		window = 10_000
	)
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{
		Name: "garbage", Path: hostileGuest(t), Config: map[string]string{"mode": "garbage"},
		PoolSize: 1, Timeout: 5 * time.Second, MemoryBytes: 64 << 20,
	})
	guestPages := func() uint32 {
		in := <-r.pool
		defer func() { r.pool <- in }()
		return in.main.Memory().Size() / pageSize
	}
	// A small event: the test is about the guest's memory over many calls,
	// not about decoding cost.
	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin, User: runtime.User{UserID: "auth0|soak"}, Client: runtime.Client{ClientID: "c"}}
	var out runtime.Commands
	ctx := context.Background()
	type sample struct {
		heapKiB  uint64
		pages    uint32
		maxCall  time.Duration
		duration time.Duration
	}
	var samples []sample
	start := time.Now()
	for w := 0; w < total/window; w++ {
		var maxCall time.Duration
		t0 := time.Now()
		for i := 0; i < window; i++ {
			out.Reset()
			c0 := time.Now()
			if err := r.Run(ctx, ev, &out); err != nil {
				t.Fatalf("login %d: %v", w*window+i, err)
			}
			if d := time.Since(c0); d > maxCall {
				maxCall = d
			}
		}
		goruntime.GC()
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		samples = append(samples, sample{ms.HeapAlloc >> 10, guestPages(), maxCall, time.Since(t0)})
	}
	for i, s := range samples {
		t.Logf("after %6d logins: host heap %6d KiB, guest memory %4d pages (%d MiB), slowest call %v, window %v",
			(i+1)*window, s.heapKiB, s.pages, s.pages/16, s.maxCall.Round(time.Microsecond), s.duration.Round(time.Millisecond))
	}
	t.Logf("%d logins in %v", total, time.Since(start).Round(time.Millisecond))

	// Flat: the second half never exceeds the first half's peak by more than
	// a small margin (a leak of even 1 KiB per call would add ~100 MiB).
	peak := func(from, to int) (heap uint64, pages uint32) {
		for _, s := range samples[from:to] {
			heap, pages = max(heap, s.heapKiB), max(pages, s.pages)
		}
		return
	}
	h1, p1 := peak(0, len(samples)/2)
	h2, p2 := peak(len(samples)/2, len(samples))
	if h2 > h1+h1/4+1024 {
		t.Errorf("host heap grows: first half peak %d KiB, second half %d KiB", h1, h2)
	}
	if p2 > p1+p1/4+16 {
		t.Errorf("guest memory grows: first half peak %d pages, second half %d pages", p1, p2)
	}
	// No stall: no call anywhere near its timeout.
	for i, s := range samples {
		if s.maxCall > 3*time.Second {
			t.Errorf("window %d: a call took %v", i, s.maxCall)
		}
	}
	if st := r.Status(); st.Failures != 0 || st.Discarded != 0 {
		t.Errorf("status %+v", st)
	}
}
