package wasm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// slack is how late past its timeout a login may be answered, and how
// long a garbage collection may take while a guest runs. Generous on
// purpose: a guest that is not stopped never answers at all (and one that
// held up stop-the-world would make GC hang for good), so a wide bound still
// tells the two apart, and the 2-core CI machine runs other packages' tests
// at the same time, under -race (750 ms, then 2.77 s were missed there).
const slack = 30 * time.Second

func hostileGuest(t testing.TB) string {
	return warm(t, samples.MustBuildDir(t, filepath.Join("testdata", "guests", "hostile")))
}

// wantRuleError checks that err is a *runtime.RuleError naming rule and
// matching target (when not nil), and that its text contains want.
func wantRuleError(t *testing.T, err error, rule string, target error, want string) {
	t.Helper()
	var re *runtime.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v (%T), want a *runtime.RuleError", err, err)
	}
	if re.Rule != rule {
		t.Errorf("RuleError.Rule = %q, want %q", re.Rule, rule)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v does not match %v", err, target)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// healthy checks that another rule keeps answering while something else is
// stuck, and that the garbage collector can still stop the world.
func healthy(t *testing.T, r *Rule) {
	t.Helper()
	// A guest that held up stop-the-world would make GC hang for good.
	start := time.Now()
	goruntime.GC()
	if d := time.Since(start); d > slack {
		t.Errorf("runtime.GC took %v while a guest was running", d)
	}
	out, err := runRule(t, r, sampleEvent())
	if err != nil {
		t.Fatalf("healthy rule failed: %v", err)
	}
	if out.Access.Vote != runtime.Deny {
		t.Fatalf("healthy rule (deny-blocked-ips) did not deny the blocked IP: %+v", out.Access)
	}
}

func blockedIPs(t *testing.T, l *Loader) *Rule {
	return load(t, l, runtime.ModuleSpec{
		Name: "deny-blocked-ips", Path: sample(t, "deny-blocked-ips"),
		Config: map[string]string{"blocked_ips": "198.51.100.23"}, PoolSize: 1,
	})
}

const infiniteLoop = `(module
  (func (export "on_login") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))`

// Call trees without loops: wazero's own context checks (loop headers only)
// never fire in them. $tree calls itself twice per level: 2^depth calls.
const callTree = `(module
  (func $tree (param $n i32)
    (if (local.get $n)
      (then
        (call $tree (i32.sub (local.get $n) (i32.const 1)))
        (call $tree (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "on_login") (result i32)
    (call $tree (i32.const %d))
    (i32.const 0)))`

const deepRecursion = `(module
  (func $down (param $n i64) (result i64)
    (call $down (i64.add (local.get $n) (i64.const 1))))
  (func (export "on_login") (result i32)
    (drop (call $down (i64.const 0)))
    (i32.const 0)))`

func TestInfiniteLoopStoppedAtTimeout(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "loop", Path: watModule(t, "loop", infiniteLoop), Timeout: 100 * time.Millisecond, PoolSize: 1})
	good := blockedIPs(t, l)
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, err := runRule(t, r, sampleEvent())
		elapsed := time.Since(start)
		wantRuleError(t, err, "loop", runtime.ErrTimeout, "did not return within 100ms")
		if elapsed > 100*time.Millisecond+slack {
			t.Errorf("login answered after %v, want ≤ timeout + %v", elapsed, slack)
		}
		// The stop flag ends the abandoned call: nothing stays stuck.
		waitFor(t, slack, "the abandoned call to end", func() bool { return r.Status().Abandoned == 0 })
	}
	st := r.Status()
	if st.Timeouts != 3 || st.Discarded != 3 || st.Disabled {
		t.Errorf("status = %+v, want 3 timeouts, 3 discarded instances, not disabled", st)
	}
	healthy(t, good)
}

func TestCallTreeWithoutLoopsStoppedAtTimeout(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	// 2^40 calls: hours of work if nothing stopped it.
	r := load(t, l, runtime.ModuleSpec{Name: "tree", Path: watModule(t, "tree", fmt.Sprintf(callTree, 40)), Timeout: 100 * time.Millisecond, PoolSize: 2})
	good := blockedIPs(t, l)

	// Other logins keep working while the tree runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var otherErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var out runtime.Commands
			if err := good.Run(context.Background(), sampleEvent(), &out); err != nil {
				otherErr = err
				return
			}
		}
	}()
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, err := runRule(t, r, sampleEvent())
		elapsed := time.Since(start)
		wantRuleError(t, err, "tree", runtime.ErrTimeout, "did not return within")
		if elapsed > 100*time.Millisecond+slack {
			t.Errorf("login answered after %v, want ≤ timeout + %v", elapsed, slack)
		}
		waitFor(t, slack, "the abandoned call to end", func() bool { return r.Status().Abandoned == 0 })
	}
	close(stop)
	wg.Wait()
	if otherErr != nil {
		t.Fatalf("another rule failed while the call tree ran: %v", otherErr)
	}
	healthy(t, good)
	if st := r.Status(); st.Disabled {
		t.Errorf("rule disabled although every abandoned call ended: %+v", st)
	}
}

func TestDeepRecursionIsARuleError(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "deep", Path: watModule(t, "deep", deepRecursion), Timeout: 2 * time.Second, PoolSize: 1})
	_, err := runRule(t, r, sampleEvent())
	if err == nil {
		t.Fatal("unbounded recursion returned no error")
	}
	// Either the stack limit traps it first or the timeout stops it; which
	// one depends on the machine's speed, so no clock is asserted here.
	wantRuleError(t, err, "deep", nil, "")
	t.Logf("deep recursion: %v", err)
	// Whichever it was, the instance was discarded and its guest ended.
	waitFor(t, 30*time.Second, "the failed instance to end", func() bool {
		st := r.Status()
		return st.Discarded == 1 && st.Abandoned == 0
	})
	healthy(t, blockedIPs(t, l))
}

// blockingResolver answers look-ups only when released, ignoring the
// context, as a hung backend would. entered receives once per look-up that
// started.
type blockingResolver struct{ release, entered chan struct{} }

func (b blockingResolver) ResolvePolicy(ctx context.Context, q authz.PolicyQuery) (authz.Policy, error) {
	b.entered <- struct{}{}
	<-b.release
	return authz.Policy{Groups: []string{"dept-sales"}}, nil
}

// TestAbandonedCallCap: a call that does not come back (here: stuck in a host
// look-up whose backend hangs) is answered when its context ends and
// abandoned. Once MaxAbandoned abandoned calls are still running, the rule
// is disabled (and says so) instead of piling up more stuck threads.
//
// The calls are given up by cancelling their context once the guest is
// inside the look-up (an event), not by a short timeout: on a loaded
// machine a 50 ms timeout sometimes fired before the guest got there, the
// stop flag then ended the call cleanly and nothing was stuck.
func TestAbandonedCallCap(t *testing.T) {
	t.Parallel()
	res := blockingResolver{release: make(chan struct{}), entered: make(chan struct{}, 4)}
	l := newTestLoader(Options{Logger: testLogger(t), MaxAbandoned: 2, Authz: res})
	r := load(t, l, runtime.ModuleSpec{Name: "dept", Path: sample(t, "department-claims"), Timeout: time.Minute, PoolSize: 2})
	good := blockedIPs(t, l)
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-res.entered
			cancel()
		}()
		var out runtime.Commands
		err := r.Run(ctx, sampleEvent(), &out)
		cancel()
		wantRuleError(t, err, "dept", context.Canceled, "on_login")
	}
	st := r.Status()
	if !st.Disabled || st.Abandoned != 2 {
		t.Fatalf("after 2 stuck calls: status %+v, want disabled with 2 abandoned calls", st)
	}
	// A disabled rule answers at once: not after its one-minute timeout.
	_, err := runRule(t, r, sampleEvent())
	wantRuleError(t, err, "dept", ErrDisabled, "2 calls were still running past their deadline")
	if !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("disabled error %v does not match runtime.ErrUnavailable", err)
	}
	// Other rules are unaffected.
	healthy(t, good)
	close(res.release)
	waitFor(t, 30*time.Second, "the stuck calls to finish", func() bool { return r.Status().Abandoned == 0 })
	if !r.Status().Disabled {
		t.Error("the rule re-enabled itself; it stays disabled until reloaded")
	}
}

func TestMemoryBombTrapped(t *testing.T) {
	const bomb = `(module
  (memory 1)
  (func (export "on_login") (result i32)
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    ;; the cap is reached: touch memory past it
    (i32.store (i32.mul (memory.size) (i32.const 65536)) (i32.const 1))
    (i32.const 0)))`
	l := newTestLoader(Options{Logger: testLogger(t)})
	var before goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	const capBytes = 8 << 20
	for _, tc := range []struct {
		name, path string
		config     map[string]string
		want       string
	}{
		{"wat-bomb", watModule(t, "bomb", bomb), nil, "out of bounds memory access"},
		{"go-bomb", hostileGuest(t), map[string]string{"mode": "membomb"}, "trapped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := load(t, l, runtime.ModuleSpec{Name: tc.name, Path: tc.path, MemoryBytes: capBytes * 2, Config: tc.config, PoolSize: 1, Timeout: 5 * time.Second})
			_, err := runRule(t, r, sampleEvent())
			wantRuleError(t, err, tc.name, nil, tc.want)
			t.Logf("%s: %v", tc.name, truncateErr(err))
			if st := r.Status(); st.Discarded != 1 {
				t.Errorf("status %+v: the instance was not discarded", st)
			}
			// The rule still works with a fresh instance (and fails the same way).
			_, err = runRule(t, r, sampleEvent())
			wantRuleError(t, err, tc.name, nil, tc.want)
		})
	}
	// Guest memory lives in the host's heap (wazero allocates it there), up
	// to the cap per instance; once the bombs' instances are gone, so is it.
	var after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("host heap after both bombs: %+d KiB", grew>>10)
	if grew > 3*capBytes {
		t.Errorf("host heap grew by %d MiB after the bombs were cleaned up", grew>>20)
	}
}

func truncateErr(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func TestGuestFailuresAreRuleErrors(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t), MaxOutputBytes: 64 << 10})
	output := func(s string) string {
		return outputModule(s, "(local.get $off)", fmt.Sprintf("(i64.const %d)", len(s)))
	}
	const oversized = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func (export "on_login") (result i32)
    (call $output_set (call $alloc (i64.const 1048576)) (i64.const 1048576))
    (i32.const 0)))`
	const trap = `(module (func (export "on_login") (result i32) unreachable))`
	const status = `(module (func (export "on_login") (result i32) (i32.const 7)))`
	const stderr = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 16) "guest says: bad input\n")
  (func (export "on_login") (result i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 22))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable))`
	for _, tc := range []struct {
		name, path string
		config     map[string]string
		target     error
		want       string
	}{
		{"go-panic", hostileGuest(t), map[string]string{"mode": "panic"}, nil, "on_login trapped"},
		{"trap", watModule(t, "trap", trap), nil, nil, "unreachable"},
		{"status", watModule(t, "status", status), nil, nil, "on_login failed with status 7"},
		{"stderr", watModule(t, "stderr", stderr), nil, nil, "guest stderr: guest says: bad input"},
		{"invalid-json", watModule(t, "badjson", output(`{"id_token": {"claims": `)), nil, runtime.ErrInvalid, "not valid commands JSON"},
		{"unknown-key", watModule(t, "unknownkey", output(`{"id_tokens":{"claims":{"x":1}}}`)), nil, runtime.ErrInvalid, `unknown field "id_tokens"`},
		{"trailing-data", watModule(t, "trailing", output(`{} {}`)), nil, runtime.ErrInvalid, "after top-level value"},
		// encoding/json keeps the last of two keys: the allow would win.
		{"duplicate-key", watModule(t, "dupkey", output(`{"access":{"vote":"deny"},"Access":{"vote":"allow"}}`)), nil, runtime.ErrInvalid, `duplicate key "Access"`},
		{"duplicate-claim", watModule(t, "dupclaim", output(`{"id_token":{"claims":{"role":"user","role":"admin"}}}`)), nil, runtime.ErrInvalid, `duplicate key "role"`},
		{"bad-vote", watModule(t, "badvote", output(`{"access":{"vote":"maybe"}}`)), nil, runtime.ErrInvalid, `vote "maybe"`},
		{"oversized", watModule(t, "oversized", oversized), nil, runtime.ErrTooLarge, "over the 65536 byte cap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := load(t, l, runtime.ModuleSpec{Name: tc.name, Path: tc.path, Config: tc.config, PoolSize: 1, Timeout: 5 * time.Second})
			var out runtime.Commands
			out.IDToken.Claims.Set("left-over", true)
			err := r.Run(context.Background(), sampleEvent(), &out)
			wantRuleError(t, err, tc.name, tc.target, tc.want)
			t.Logf("%v", truncateErr(err))
			if st := r.Status(); st.Discarded != 1 || st.Failures != 1 {
				t.Errorf("status %+v: want the failed instance discarded", st)
			}
			// A replacement instance serves the next call.
			_, err = runRule(t, r, sampleEvent())
			wantRuleError(t, err, tc.name, tc.target, tc.want)
		})
	}
}

func TestNoNetworkUnlessAllowed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the host network")
	}))
	defer srv.Close()
	l := newTestLoader(Options{Logger: testLogger(t)})
	guest := hostileGuest(t)
	conf := map[string]string{"mode": "http", "url": srv.URL + "/x"}

	denied := load(t, l, runtime.ModuleSpec{Name: "no-net", Path: guest, Config: conf, PoolSize: 1, Timeout: 5 * time.Second})
	_, err := runRule(t, denied, sampleEvent())
	wantRuleError(t, err, "no-net", nil, "not allowed")

	allowed := load(t, l, runtime.ModuleSpec{Name: "net", Path: guest, Config: conf, PoolSize: 1, Timeout: 5 * time.Second, AllowedHosts: []string{"127.0.0.1"}})
	out, err := runRule(t, allowed, sampleEvent())
	if err != nil {
		t.Fatalf("allowed host: %v", err)
	}
	if v, _ := out.IDToken.Claims.Get("https://example.com/http"); v != "hello from the host network" {
		t.Fatalf("claim = %v, want the server's answer", v)
	}
}

func TestNoFileSystem(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "fs", Path: hostileGuest(t), Config: map[string]string{"mode": "fs"}, PoolSize: 1, Timeout: 5 * time.Second})
	out, err := runRule(t, r, sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := out.IDToken.Claims.Get("https://example.com/fs")
	if msg == "read succeeded" {
		t.Fatal("the guest read /etc/hostname")
	}
	t.Logf("guest reading /etc/hostname: %v", msg)
	if n, _ := out.IDToken.Claims.Get("https://example.com/root_entries"); fmt.Sprint(n) != "0" {
		t.Errorf("guest listed %v entries of /", n)
	}
}

func TestCredentialsExchangeExport(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "m2m", Path: hostileGuest(t), PoolSize: 1, Timeout: 5 * time.Second})
	ev := sampleEvent()
	ev.Trigger = runtime.TriggerCredentialsExchange
	out, err := runRule(t, r, ev)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := out.AccessToken.Claims.Get("https://example.com/m2m"); v != "client-1" {
		t.Fatalf("on_credentials_exchange claim = %v", v)
	}
	// A module without on_credentials_exchange abstains for that trigger.
	login := load(t, l, runtime.ModuleSpec{Name: "login-only", Path: sample(t, "deny-blocked-ips"), Config: map[string]string{"blocked_ips": "198.51.100.23"}, PoolSize: 1})
	out, err = runRule(t, login, ev)
	if err != nil || out.Access.Vote != runtime.Abstain {
		t.Fatalf("login-only module on credentials-exchange: %v, %+v", err, out.Access)
	}
}
