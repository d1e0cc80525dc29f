package wasm

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// Hostile initialisers (issue 14 item 2): a start function, _initialize or
// constructor that never returns must not wedge the process. Each case
// fails on a loader that runs initialisers without a deadline: LoadModule
// never returns, or replacements keep spinning.

const startLoop = `(module
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "on_login") (result i32) (i32.const 0)))`

// A start function without loops (wazero's own context checks never fire
// in it): 2^40 calls.
const startTree = `(module
  (func $tree (param $n i32)
    (if (local.get $n)
      (then
        (call $tree (i32.sub (local.get $n) (i32.const 1)))
        (call $tree (i32.sub (local.get $n) (i32.const 1))))))
  (func $start (call $tree (i32.const 40)))
  (start $start)
  (func (export "on_login") (result i32) (i32.const 0)))`

const initializeLoop = `(module
  (memory 1)
  (func (export "_initialize") (loop $l (br $l)))
  (func (export "on_login") (result i32) (i32.const 0)))`

const ctorsLoop = `(module
  (memory 1)
  (func (export "__wasm_call_ctors") (loop $l (br $l)))
  (func (export "on_login") (result i32) (i32.const 0)))`

// lateLoop's start function spins once the guest's wall clock is past
// 1,500 s after the epoch; its on_login always traps, so every call is
// followed by a replacement instance. The test moves the clock after load.
const lateLoop = `(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory 1)
  (func $start
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 0)))
    (if (i64.gt_u (i64.load (i32.const 0)) (i64.const 1500000000000))
      (then (loop $l (br $l)))))
  (start $start)
  (func (export "on_login") (result i32) unreachable))`

// idle waits until every guest goroutine of l has ended and every compiled
// module is closed: the CPU is back to idle, by event rather than by clock.
func idle(t *testing.T, l *Loader, wantOpen int64) {
	t.Helper()
	waitFor(t, 30*time.Second, "every guest to end", func() bool {
		return l.live.Load() == 0 && l.open.Load() == wantOpen
	})
}

// loadAsync runs LoadModule on its own goroutine, so a loader that hangs
// fails the test instead of hanging it.
func loadAsync(t *testing.T, l *Loader, spec runtime.ModuleSpec) (runtime.Rule, error) {
	t.Helper()
	type result struct {
		r   runtime.Rule
		err error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := l.LoadModule(context.Background(), spec)
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		return res.r, res.err
	case <-time.After(60 * time.Second):
		t.Fatal("LoadModule did not return: the initialiser wedged it")
		return nil, nil
	}
}

func TestHostileInitialisersFailLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, src string }{
		{"start-loop", startLoop},
		{"start-call-tree", startTree},
		{"initialize-loop", initializeLoop},
		{"ctors-loop", ctorsLoop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLoader(Options{Logger: testLogger(t), InitTimeout: 200 * time.Millisecond})
			defer l.Close(context.Background())
			path := watModule(t, tc.name, tc.src)
			r, err := loadAsync(t, l, runtime.ModuleSpec{Name: tc.name, Path: path, PoolSize: 2, Timeout: 100 * time.Millisecond})
			if err == nil {
				_ = r.(*Rule).Cleanup()
				t.Fatal("LoadModule succeeded")
			}
			var me *ModuleError
			if !errors.As(err, &me) || me.Rule != tc.name || !errors.Is(err, runtime.ErrTimeout) {
				t.Fatalf("error %v (%T): want a *ModuleError matching runtime.ErrTimeout", err, err)
			}
			wantText(t, err, "initialisers did not return within 200ms")
			idle(t, l, 0)
		})
	}
}

// TestStartFunctionStillRuns: the start section becomes an initialiser,
// still run once before any call: here it sets the status on_login returns.
func TestStartFunctionStillRuns(t *testing.T) {
	t.Parallel()
	const src = `(module
  (global $status (mut i32) (i32.const 0))
  (func $start (global.set $status (i32.const 7)))
  (start $start)
  (func (export "on_login") (result i32) (global.get $status)))`
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "start", Path: watModule(t, "start", src), PoolSize: 1})
	_, err := runRule(t, r, sampleEvent())
	wantRuleError(t, err, "start", nil, "on_login failed with status 7")
}

// TestLateInstantiationLoopDisablesRule: a module that spins only in later
// instances (replacements) gets each replacement stopped at the deadline,
// retried with a growing pause, and after MaxAbandoned failures in a row
// the rule is disabled — no guest keeps running.
func TestLateInstantiationLoopDisablesRule(t *testing.T) {
	t.Parallel()
	var late atomic.Bool
	now := func() time.Time {
		if late.Load() {
			return time.Unix(2000, 0)
		}
		return time.Unix(1000, 0)
	}
	l := newTestLoader(Options{Logger: testLogger(t), Now: now, MaxAbandoned: 3, InitTimeout: 100 * time.Millisecond})
	defer l.Close(context.Background())
	r := load(t, l, runtime.ModuleSpec{Name: "late", Path: watModule(t, "late", lateLoop), PoolSize: 1, Timeout: time.Second})
	late.Store(true)

	_, err := runRule(t, r, sampleEvent())
	wantRuleError(t, err, "late", nil, "unreachable")
	waitFor(t, 60*time.Second, "the rule to be disabled", func() bool { return r.Status().Disabled })
	st := r.Status()
	if st.InitFailures != 3 {
		t.Errorf("status %+v: want 3 failed replacements", st)
	}
	idle(t, l, 1)
	_, err = runRule(t, r, sampleEvent())
	wantRuleError(t, err, "late", ErrDisabled, "3 replacement instances in a row could not be made")
	wantText(t, err, "initialisers did not return within 100ms")
	if !errors.Is(err, runtime.ErrTimeout) {
		t.Errorf("error %v does not keep the timeout cause", err)
	}
}

// TestReplacementRecovers: a replacement that fails once is retried, and a
// success resets the count.
func TestReplacementRecovers(t *testing.T) {
	t.Parallel()
	var late atomic.Bool
	var clockCalls atomic.Int32
	now := func() time.Time {
		clockCalls.Add(1)
		if late.Load() {
			return time.Unix(2000, 0)
		}
		return time.Unix(1000, 0)
	}
	l := newTestLoader(Options{Logger: testLogger(t), Now: now, MaxAbandoned: 3, InitTimeout: 100 * time.Millisecond})
	defer l.Close(context.Background())
	r := load(t, l, runtime.ModuleSpec{Name: "late", Path: watModule(t, "late", lateLoop), PoolSize: 1, Timeout: time.Second})
	late.Store(true)
	_, err := runRule(t, r, sampleEvent())
	wantRuleError(t, err, "late", nil, "unreachable")
	waitFor(t, 60*time.Second, "a failed replacement", func() bool { return r.Status().InitFailures == 1 })
	late.Store(false)
	waitFor(t, 60*time.Second, "the pool to be refilled", func() bool { return len(r.pool) == 1 })
	if st := r.Status(); st.InitFailures != 0 || st.Disabled {
		t.Errorf("status %+v: want the failure count reset and the rule enabled", st)
	}
}

func wantText(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v does not mention %q", err, want)
	}
}
