package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime/wasm/wasmbuild"
)

// The hostile module matrix (issue 14 item 2) at the binary level: modules
// whose initialisers never return — a start function, _initialize, or a
// start function that spins only from the second instantiation on — run
// through `check`, `test`, `serve` and hot reload of the real binary. Each
// must answer (exit with a clear error, or serve), stop on SIGTERM, release
// the data-dir owner lock, and leave no guest burning CPU.
//
// Waits are bound by events (a line in the log, a request reaching the gate
// server, a process exiting); the few wall-clock bounds are generous limits
// that only a wedged process misses.

const (
	hostileBearer = "hostile-test-bearer-key-0123456789"
	// hostileWait bounds anything that must happen "promptly": a wedged
	// process never does it, a loaded -race machine does it well within.
	hostileWait = 60 * time.Second
)

const watStartLoop = `(module
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "on_login") (result i32) (i32.const 0)))`

const watInitializeLoop = `(module
  (memory 1)
  (func (export "_initialize") (loop $l (br $l)))
  (func (export "on_login") (result i32) (i32.const 0)))`

const watGood = `(module (func (export "on_login") (result i32) (i32.const 0)))`

// watGated's start function asks the gate server (an extism http_request)
// whether to spin: 200 returns, anything else loops forever. Its on_login
// traps, so every login is followed by a replacement instance. The gate
// makes "loops only from the 2nd instantiation on" deterministic, and a
// request reaching it says the guest is in its initialiser right now.
func watGated(url string) string {
	req := fmt.Sprintf(`{"url":%q,"method":"GET"}`, url)
	return fmt.Sprintf(`(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "http_request" (func $http (param i64 i64) (result i64)))
  (import "extism:host/env" "http_status_code" (func $status (result i32)))
  (memory 1)
  (data (i32.const 0) %q)
  (func $start
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.const %d)))
    (block $done (loop $copy
      (br_if $done (i32.ge_u (local.get $i) (i32.const %d)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (drop (call $http (local.get $off) (i64.const 0)))
    (if (i32.ne (call $status) (i32.const 200))
      (then (loop $spin (br $spin)))))
  (start $start)
  (func (export "on_login") (result i32) unreachable))`, req, len(req), len(req))
}

// gate answers the gated module: the first ok requests 200, later ones 503.
// Every request is announced on hits.
type gate struct {
	*httptest.Server
	ok   int64
	n    atomic.Int64
	hits chan int64
}

func newGate(t *testing.T, ok int64) *gate {
	g := &gate{ok: ok, hits: make(chan int64, 64)}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := g.n.Add(1)
		select {
		case g.hits <- n:
		default:
		}
		if n > g.ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(g.Close)
	return g
}

// waitHit waits for the gate's request number n (1-based).
func (g *gate) waitHit(t *testing.T, n int64) {
	t.Helper()
	timer := time.NewTimer(hostileWait)
	defer timer.Stop()
	for g.n.Load() < n {
		select {
		case <-g.hits:
		case <-timer.C:
			t.Fatalf("the gate saw %d requests, want %d: the guest's initialiser did not run", g.n.Load(), n)
		}
	}
}

// hostileEnv is one scenario's folder: a data dir, a config file and the
// modules it may point at.
type hostileEnv struct {
	bin, dir, data, cfg string
	// server is the config's server section, if any.
	server string
}

func newHostileEnv(t *testing.T, bin string) *hostileEnv {
	dir := t.TempDir()
	return &hostileEnv{bin: bin, dir: dir, data: filepath.Join(dir, "data"), cfg: filepath.Join(dir, "claimsmith.yaml")}
}

// module assembles WebAssembly text into the scenario's folder.
func (e *hostileEnv) module(t *testing.T, name, src string) string {
	t.Helper()
	out := filepath.Join(e.dir, name+".wasm")
	if err := wasmbuild.WATSource(context.Background(), src, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// config writes the configuration: one wasm rule (pool of one instance)
// and the native post-login hook.
func (e *hostileEnv) config(t *testing.T, wasmPath, timeout, onError string) {
	t.Helper()
	cfg := fmt.Sprintf(`pipeline:
  namespace: https://example.com/
  rules:
    - name: hostile
      wasm: %s
      timeout: %s
      on_error: %s
      pool_size: 1
      allowed_hosts: [127.0.0.1]
hooks:
  native:
    callers:
      - name: idp
        bearer_key_env: HOSTILE_TEST_BEARER
`, wasmPath, timeout, onError) + e.server
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// proc is one run of the binary.
type proc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
	err    error // set before exited closes
	took   time.Duration
}

func (e *hostileEnv) start(t *testing.T, args ...string) *proc {
	t.Helper()
	args = append([]string{"--data-dir", e.data, "--config", e.cfg}, args...)
	p := &proc{cmd: exec.Command(e.bin, args...), out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "HOSTILE_TEST_BEARER="+hostileBearer)
	started := time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.took = time.Since(started)
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("claimsmith %s output:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t *testing.T, what string) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(hostileWait):
		t.Fatalf("%s: the process did not exit within %v (wedged)", what, hostileWait)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("%s: killed by %v instead of exiting", what, ws.Signal())
		}
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("%s: %v", what, p.err)
	}
	return 0
}

// waitLog waits for a line of the process's output containing s.
func (p *proc) waitLog(t *testing.T, s string) {
	t.Helper()
	eventually(t, hostileWait, "the log line "+strconv.Quote(s), func() bool {
		select {
		case <-p.exited:
			t.Fatalf("the process exited before logging %q", s)
		default:
		}
		return strings.Contains(p.out.String(), s)
	})
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// cpuTicks is the process's user+system CPU time in clock ticks
// (/proc/PID/stat fields 14 and 15).
func (p *proc) cpuTicks(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count from after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// ticksPerSecond is USER_HZ, 100 on every Linux architecture Go supports.
const ticksPerSecond = 100

// runnable samples the states of the process's threads (/proc/PID/task/*/
// stat, field 3) every 10ms for window and returns the fraction of samples
// in which one was running or waiting for a CPU (R). A spinning guest is R
// all the time however loaded the machine; an idle server almost never.
func (p *proc) runnable(t *testing.T, window time.Duration) float64 {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", p.cmd.Process.Pid)
	var samples, busy int
	for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		samples++
		for _, task := range tasks {
			b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
			if err != nil {
				continue // the thread ended
			}
			if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "R" {
				busy++
				break
			}
		}
	}
	return float64(busy) / float64(samples)
}

// wantIdle checks that no guest still runs: over a window, the process
// burns (almost) no CPU, and none of its threads is runnable most of the
// time. The CPU bound (a fifth of one core) leaves room for the Go
// runtime's own work; the runnable bound holds on a loaded machine too,
// where a spinning guest gets only a small share of a core.
func (p *proc) wantIdle(t *testing.T, what string) {
	t.Helper()
	const window = 2 * time.Second
	before := p.cpuTicks(t)
	run := p.runnable(t, window)
	used := p.cpuTicks(t) - before
	t.Logf("%s: %d ms of CPU over a %v window, a thread runnable in %.0f%% of samples", what, used*1000/ticksPerSecond, window, 100*run)
	if limit := int64(window.Seconds() * ticksPerSecond / 5); used > limit {
		t.Errorf("%s: the process used %d ms of CPU over %v: a guest is still running", what, used*1000/ticksPerSecond, window)
	}
	if run > 0.5 {
		t.Errorf("%s: a thread was runnable in %.0f%% of samples: a guest is still running", what, 100*run)
	}
}

// serving is a running `claimsmith serve`.
type serving struct {
	*proc
	url string
	key string // admin key (write) for POST /api/reload
}

// serve creates an admin key, starts serve and waits until it answers.
func (e *hostileEnv) serve(t *testing.T) *serving {
	t.Helper()
	key := e.adminKey(t)
	addr := freeAddr(t)
	s := &serving{proc: e.start(t, "serve", "--addr", addr), url: "http://" + addr, key: key}
	eventually(t, hostileWait, "serve answers /healthz", func() bool {
		select {
		case <-s.exited:
			t.Fatalf("serve exited: %v", s.err)
		default:
		}
		resp, err := http.Get(s.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

func (e *hostileEnv) adminKey(t *testing.T) string {
	t.Helper()
	p := e.start(t, "admin-key", "create", "--name", "ops-"+strconv.FormatInt(time.Now().UnixNano(), 36), "--scopes", "all")
	if code := p.wait(t, "admin-key create"); code != 0 {
		t.Fatalf("admin-key create: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(p.out.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// login posts a native post-login and returns the decision; the answer
// must be a 200.
func (s *serving) login(t *testing.T) login.NativeResponse {
	t.Helper()
	body := `{"user":{"user_id":"auth0|alice"},"client":{"client_id":"portal"}}`
	req, _ := http.NewRequest(http.MethodPost, s.url+"/hooks/v1/post-login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+hostileBearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	var ans login.NativeResponse
	if err := json.Unmarshal(b, &ans); err != nil {
		t.Fatalf("login: %v: %s", err, b)
	}
	return ans
}

// reload posts /api/reload and returns the status and body.
func (s *serving) reload(t *testing.T) (int, string) {
	t.Helper()
	code, body, err := s.tryReload()
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	return code, body
}

func (s *serving) tryReload() (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/reload", nil)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// stop sends SIGTERM and wants exit status 0.
func (s *serving) stop(t *testing.T) {
	t.Helper()
	s.signal(t, syscall.SIGTERM)
	if code := s.wait(t, "serve after SIGTERM"); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d", code)
	}
}

// wantLockFree shows the data-dir owner lock was released: a new serve on
// the same data dir (with a harmless module) starts and stops.
func (e *hostileEnv) wantLockFree(t *testing.T) {
	t.Helper()
	e.config(t, e.module(t, "good", watGood), "250ms", "deny")
	e.serve(t).stop(t)
}

func wantOutput(t *testing.T, p *proc, what string, want ...string) {
	t.Helper()
	out := p.out.String()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output does not mention %q:\n%s", what, w, out)
		}
	}
}

// testArgs are `claimsmith test` arguments: the event in dir, the sample
// authorization data.
func testArgs(t *testing.T, dir string) []string {
	t.Helper()
	data, err := filepath.Abs(filepath.Join("..", "..", "samples", "data", "claimsmith-full.json"))
	if err != nil {
		t.Fatal(err)
	}
	return []string{"test", "--data", data, "--event", writeEvent(t, dir)}
}

func writeEvent(t *testing.T, dir string) string {
	t.Helper()
	ev := filepath.Join(dir, "event.json")
	if err := os.WriteFile(ev, []byte(`{"trigger":"post-login","user":{"user_id":"auth0|alice"},"client":{"client_id":"portal"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestHostileModules is the matrix. A rule timeout of 250ms gives the
// initialisers the minimum deadline, 1s (wasm.DefaultInitTimeout).
func TestHostileModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildClaimsmith(t)
	const initDeadline = "initialisers did not return within 1s"

	for _, mod := range []struct{ name, src string }{
		{"start-loop", watStartLoop},
		{"initialize-loop", watInitializeLoop},
	} {
		t.Run(mod.name, func(t *testing.T) {
			t.Parallel()
			e := newHostileEnv(t, bin)
			hostile := e.module(t, mod.name, mod.src)
			// check and test refuse the module, naming the deadline.
			e.config(t, hostile, "250ms", "skip")
			for _, args := range [][]string{{"check"}, testArgs(t, e.dir)} {
				p := e.start(t, args...)
				if code := p.wait(t, args[0]); code != 1 {
					t.Errorf("%s: exit %d, want 1", args[0], code)
				}
				wantOutput(t, p, args[0], `wasm rule "hostile"`, initDeadline)
			}

			// serve refuses to start, and never listened.
			p := e.start(t, "serve", "--addr", freeAddr(t))
			if code := p.wait(t, "serve"); code != 1 {
				t.Errorf("serve: exit %d, want 1", code)
			}
			wantOutput(t, p, "serve", initDeadline)
			e.wantLockFree(t)

			// Hot reload: both ways are refused within the deadline, the
			// running generation keeps serving, and no guest keeps spinning.
			good := e.module(t, "good", watGood)
			e.config(t, good, "250ms", "deny")
			s := e.serve(t)
			e.config(t, hostile, "250ms", "skip")
			code, body := s.reload(t)
			if code != http.StatusBadRequest || !strings.Contains(body, initDeadline) {
				t.Errorf("POST /api/reload with the hostile module: %d %s, want 400 naming the deadline", code, body)
			}
			s.signal(t, syscall.SIGHUP)
			s.waitLog(t, "SIGHUP: reloading")
			eventually(t, hostileWait, "the SIGHUP reload to be rejected", func() bool {
				return strings.Count(s.out.String(), "configuration reload rejected") == 2
			})
			if ans := s.login(t); !ans.Decision.Allowed {
				t.Errorf("login after the rejected reloads: %+v, want the first generation's allow", ans.Decision)
			}
			s.wantIdle(t, "after the rejected reloads")
			e.config(t, good, "250ms", "deny")
			if code, body := s.reload(t); code != http.StatusOK {
				t.Errorf("reload with a good module after the rejected ones: %d %s", code, body)
			}
			s.stop(t)
			e.wantLockFree(t)
		})
	}

	// The module spins only from its second instantiation on: it loads,
	// every login fails it (on_error skip: the login is still answered),
	// replacement instances are stopped at their deadline, and after
	// wasm.DefaultMaxAbandoned of them in a row the rule is disabled.
	t.Run("late-loop", func(t *testing.T) {
		t.Parallel()
		e := newHostileEnv(t, bin)

		g := newGate(t, 1)
		e.config(t, e.module(t, "late", watGated(g.URL)), "250ms", "skip")
		p := e.start(t, "check")
		if code := p.wait(t, "check"); code != 0 {
			t.Errorf("check: exit %d, want 0 (the first instance is fine)", code)
		}
		// test: the login traps (skipped), the replacement spins; the
		// command still answers and exits.
		g = newGate(t, 1)
		e.config(t, e.module(t, "late", watGated(g.URL)), "250ms", "skip")
		p = e.start(t, testArgs(t, e.dir)...)
		if code := p.wait(t, "test"); code != 0 {
			t.Errorf("test: exit %d, want 0 (on_error skip)", code)
		}
		wantOutput(t, p, "test", "unreachable")

		g = newGate(t, 1)
		e.config(t, e.module(t, "late", watGated(g.URL)), "250ms", "skip")
		s := e.serve(t)
		for i := 0; i < 3; i++ {
			if ans := s.login(t); !ans.Decision.Allowed {
				t.Fatalf("login %d: %+v, want allowed (the failing rule is skipped)", i, ans.Decision)
			}
		}
		g.waitHit(t, 2) // a replacement is in its initialiser
		s.waitLog(t, "wasm rule disabled")
		wantOutput(t, s.proc, "serve", "replacement instances in a row could not be made")
		if ans := s.login(t); !ans.Decision.Allowed {
			t.Errorf("login with the rule disabled: %+v, want allowed (skipped)", ans.Decision)
		}
		s.wantIdle(t, "after the rule was disabled")
		// A reload instantiates the module again: it spins and the reload
		// is refused at the deadline.
		if code, body := s.reload(t); code != http.StatusBadRequest || !strings.Contains(body, initDeadline) {
			t.Errorf("reload of the late-loop module: %d %s, want 400 naming the deadline", code, body)
		}
		s.wantIdle(t, "after the refused reload")
		s.stop(t)

		// on_error deny: the same logins are answered, denied.
		g = newGate(t, 1)
		e.config(t, e.module(t, "late", watGated(g.URL)), "250ms", "deny")
		s = e.serve(t)
		for i := 0; i < 2; i++ {
			if ans := s.login(t); ans.Decision.Allowed {
				t.Errorf("login %d with on_error deny: %+v, want denied", i, ans.Decision)
			}
		}
		s.stop(t)
		e.wantLockFree(t)
	})

	// SIGTERM while a guest spins in its initialiser, with a deadline far
	// away (rule timeout 30s: 60s for the initialisers): every command
	// exits at once, and serve releases the data-dir lock.
	t.Run("sigterm", func(t *testing.T) {
		t.Parallel()
		e := newHostileEnv(t, bin)
		for _, args := range [][]string{{"check"}, testArgs(t, e.dir), {"serve", "--addr", freeAddr(t)}} {
			g := newGate(t, 0)
			e.config(t, e.module(t, "spin", watGated(g.URL)), "30s", "skip")
			p := e.start(t, args...)
			g.waitHit(t, 1)
			p.signal(t, syscall.SIGTERM)
			code := p.wait(t, args[0]+" after SIGTERM")
			t.Logf("%s: exit %d %v after start", args[0], code, p.took.Round(time.Millisecond))
			if code == 0 {
				t.Errorf("%s stopped while loading: exit 0, want a failure status", args[0])
			}
			// Stopped by the signal, not by the initialisers' deadline.
			wantOutput(t, p, args[0], "initialising the module: context canceled")
			if strings.Contains(p.out.String(), "did not return within") {
				t.Errorf("%s waited for the initialisers' deadline instead of stopping", args[0])
			}
		}
		e.wantLockFree(t)
	})

	// A reload stuck in a module's initialiser (its deadline far away): a
	// second reload is refused as in progress, the stuck one is abandoned
	// at server.reload_timeout, its guest stopped, and the next reload runs.
	t.Run("stuck-reload", func(t *testing.T) {
		t.Parallel()
		e := newHostileEnv(t, bin)
		e.server = "server:\n  reload_timeout: 2s\n"
		good := e.module(t, "good", watGood)
		e.config(t, good, "250ms", "deny")
		s := e.serve(t)
		g := newGate(t, 0)
		e.config(t, e.module(t, "spin", watGated(g.URL)), "30s", "skip")
		type answer struct {
			code int
			body string
			err  error
		}
		stuck := make(chan answer, 1)
		go func() {
			code, body, err := s.tryReload()
			stuck <- answer{code, body, err}
		}()
		g.waitHit(t, 1)
		// For scale (logged, not asserted: under load a spinning guest
		// gets a small share of a core): the same probe while one spins.
		busy0 := s.cpuTicks(t)
		run := s.runnable(t, time.Second)
		t.Logf("while the guest spins: %d ms of CPU over 1s, a thread runnable in %.0f%% of samples",
			(s.cpuTicks(t)-busy0)*1000/ticksPerSecond, 100*run)
		if code, body := s.reload(t); code != http.StatusConflict || !strings.Contains(body, "already in progress") {
			t.Errorf("second reload during a stuck one: %d %s, want 409 in progress", code, body)
		}
		var a answer
		select {
		case a = <-stuck:
		case <-time.After(hostileWait):
			t.Fatal("the stuck reload was never answered")
		}
		if a.err != nil || a.code != http.StatusConflict || !strings.Contains(a.body, "not built within server.reload_timeout (2s)") {
			t.Errorf("stuck reload: %d %s %v, want 409 naming server.reload_timeout", a.code, a.body, a.err)
		}
		s.wantIdle(t, "after the abandoned reload")
		e.config(t, good, "250ms", "deny")
		if code, body := s.reload(t); code != http.StatusOK {
			t.Errorf("reload after the abandoned one: %d %s, want 200", code, body)
		}
		s.stop(t)
		e.wantLockFree(t)
	})

	// SIGTERM while a reload (POST /api/reload, then SIGHUP) is stuck in a
	// module's initialiser and far from every deadline: serve abandons the
	// reload and exits cleanly instead of waiting for it.
	t.Run("sigterm-during-reload", func(t *testing.T) {
		t.Parallel()
		for _, how := range []string{"endpoint", "sighup"} {
			e := newHostileEnv(t, bin)
			e.config(t, e.module(t, "good", watGood), "250ms", "deny")
			s := e.serve(t)
			g := newGate(t, 0)
			e.config(t, e.module(t, "spin", watGated(g.URL)), "30s", "skip")
			if how == "endpoint" {
				go func() { _, _, _ = s.tryReload() }()
			} else {
				s.signal(t, syscall.SIGHUP)
			}
			g.waitHit(t, 1)
			s.stop(t)
			t.Logf("%s: serve exited %v after start", how, s.took.Round(time.Millisecond))
			wantOutput(t, s.proc, how, "reload rejected")
			e.wantLockFree(t)
		}
	})
}
