package wasm

import (
	"context"
	"flag"
	"os"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// soak runs TestPooledGoRuleLogins at its full 100,000 logins (about 90 s
// under -race on a busy 2-core machine); `make test` runs 10,000.
var soak = flag.Bool("wasm.soak", os.Getenv("CLAIMSMITH_WASM_SOAK") != "", "run the wasm soak test at its full length")

// TestPooledGoRuleLogins runs logins through one pooled instance of a Go
// rule that allocates on every call, sampling host heap and guest linear
// memory ten times. Both stay flat and no call stalls: a leak per call
// shows in the second half. (With wazero's default fake clock a pooled Go
// guest stopped collecting after ~57k calls and ran into its memory cap;
// the full -wasm.soak run passes that point, and TestGuestClocksAreReal
// checks the cause directly.)
func TestPooledGoRuleLogins(t *testing.T) {
	total := 10_000
	if *soak {
		total = 100_000
	}
	window := total / 10
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
	// a small margin (a leak of even 1 KiB per call would add 5 MiB over
	// the second half of a short run, 50 MiB of a full one).
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
	// No stall: a call that stalled to its 5 s timeout failed the run above
	// (the slowest call of each window is logged).
	if st := r.Status(); st.Failures != 0 || st.Discarded != 0 {
		t.Errorf("status %+v", st)
	}
}

// TestGuestClocksAreReal: guests read the host's clocks. wazero's defaults
// are fakes (a wall clock stuck in 2022, a monotonic clock that advances
// 1 ms per read), under which a pooled Go guest's collector stops pacing.
// The guest remembers its monotonic reading of the first call; the second
// call, 50 ms of host time later, fails with status 7 if its clock moved
// less, and with 8 if its wall clock is before 2025.
func TestGuestClocksAreReal(t *testing.T) {
	t.Parallel()
	const src = `(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory 1)
  (global $first (mut i64) (i64.const 0))
  (global $called (mut i32) (i32.const 0))
  (func $read (param $id i32) (result i64)
    (drop (call $clock (local.get $id) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))
  (func (export "on_login") (result i32)
    (local $mono i64)
    (local.set $mono (call $read (i32.const 1)))
    (if (i64.lt_u (call $read (i32.const 0)) (i64.const 1735689600000000000))
      (then (return (i32.const 8))))
    (if (i32.eqz (global.get $called))
      (then (global.set $called (i32.const 1)) (global.set $first (local.get $mono)) (return (i32.const 0))))
    (if (i64.lt_u (i64.sub (local.get $mono) (global.get $first)) (i64.const 50000000))
      (then (return (i32.const 7))))
    (i32.const 0)))`
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "clocks", Path: watModule(t, "clocks", src), PoolSize: 1, Timeout: 5 * time.Second})
	if _, err := runRule(t, r, sampleEvent()); err != nil {
		t.Fatalf("first call: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := runRule(t, r, sampleEvent()); err != nil {
		t.Fatalf("second call, 50 ms later: %v (status 7: the monotonic clock is not the host's; 8: the wall clock is not)", err)
	}
}
