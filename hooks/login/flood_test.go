package login_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/login"
)

// Unauthenticated bodies (issue 14 item 5): callers whose signature can only
// be checked against the body declare 256 KiB, send a few bytes and stall.
// The server must neither size buffers from Content-Length nor let the
// total memory of such bodies grow with their number: over the budget it
// answers 503 with Retry-After at once and closes the connection, while
// callers with a bearer key keep being answered.
//
// `make test` runs CLAIMSMITH_FLOOD_CONNS (default 3,000) connections
// against an 8 MiB budget; `make flood` runs the acceptance scale, 20,000
// connections against the default budget. The heap (both ends live in this
// process) must peak under 200 MiB, and its live part stay under 200 MiB
// scaled to the connections (at least 32 MiB).

const floodDeclared = 256 << 10

func TestUnauthenticatedBodyFlood(t *testing.T) {
	conns := 3000
	if v := os.Getenv("CLAIMSMITH_FLOOD_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("CLAIMSMITH_FLOOD_CONNS=%q: want a positive number", v)
		}
		conns = n
	}
	budgetBytes := int64(8 << 20)
	if conns >= 10000 {
		budgetBytes = hooks.DefaultBodyBudget
	}
	// Both ends live in this process: two descriptors per connection held.
	maxOpen := raiseFileLimit(t) / 2
	if maxOpen > 200 {
		maxOpen -= 100 // the server's listener, the test's files
	}
	budget := hooks.NewBodyBudget(budgetBytes)
	ts := newServerDeps(t, func(c *login.Config) { c.MaxBody = 0; c.BodyBudget = budgetBytes }, func(d *login.Deps) { d.BodyBudget = budget })
	addr := ts.Listener.Addr().String()

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stopSampling := sampleHeap(&peak)
	defer stopSampling()

	// The flood: every connection sends headers with a junk signature and
	// a few bytes of its declared body, then holds until the server answers
	// or the test ends.
	var (
		refused, retryAfter, otherStatus, dialFailed atomic.Int64
		open                                         = make(chan struct{}, maxOpen)
		held                                         sync.Map // net.Conn → struct{}
		wg                                           sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := time.Now()
	for i := range conns {
		select {
		case open <- struct{}{}:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		wg.Go(func() {
			defer func() { <-open }()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				dialFailed.Add(1)
				return
			}
			held.Store(c, struct{}{})
			defer func() { held.Delete(c); c.Close() }()
			fmt.Fprintf(c, "POST /hooks/v1/post-login HTTP/1.1\r\nHost: flood\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
				"webhook-id: msg_flood_%d\r\nwebhook-timestamp: %d\r\nwebhook-signature: v1,%s\r\n\r\n{\"user\":",
				floodDeclared, i, t0.Unix(), strings.Repeat("A", 43)+"=")
			// A small reader: the test's own side should not weigh in the heap.
			resp, err := http.ReadResponse(bufio.NewReaderSize(c, 256), nil)
			if err != nil {
				return // closed by the test
			}
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusServiceUnavailable:
				refused.Add(1)
				if resp.Header.Get("Retry-After") != "" {
					retryAfter.Add(1)
				}
			default:
				otherStatus.Add(1)
			}
		})
	}
	// Settled: every connection was either refused or holds budget on the
	// server (its first chunk and share of buffers).
	perHeld := int64(4<<10) + 8<<10
	eventually(t, "the flood settles", func() error {
		if n := refused.Load() + budget.InUse()/perHeld + dialFailed.Load() + otherStatus.Load(); n < int64(conns) {
			return fmt.Errorf("%d of %d connections settled (%d refused, %d B held)", n, conns, refused.Load(), budget.InUse())
		}
		return nil
	})
	flooded := time.Since(start)

	// A caller with a bearer key is answered meanwhile.
	t1 := time.Now()
	if st, b, _ := ts.post(t, "/hooks/v1/post-login", readPayload(t, "native/post-login.request.json"), header("Authorization", "Bearer "+nativeBearer)); st != http.StatusOK {
		t.Fatalf("bearer login during the flood: %d %s", st, b)
	}
	bearerLatency := time.Since(t1)
	// A signed login while the budget is spent is refused at once, 503 with
	// Retry-After (it cannot be told from the flood before its body is read).
	signedDuring, _, signedHeader := ts.post(t, "/hooks/v1/post-login", readPayload(t, "native/post-login.request.json"), signNative("msg_during", t0))

	var now runtime.MemStats
	runtime.ReadMemStats(&now)
	peakHeap := max(peak.Load(), now.HeapInuse)
	runtime.GC()
	var live runtime.MemStats
	runtime.ReadMemStats(&live)
	growth := int64(peakHeap) - int64(base.HeapInuse)
	// The acceptance bound holds for the peak, garbage included; the live
	// heap (after a collection, connections still held) must also shrink
	// with the number of connections: it follows the budget, not the flood.
	const peakLimit = 200 << 20
	liveLimit := max(int64(peakLimit)*int64(conns)/20000, 32<<20)
	t.Logf("%d connections (max %d open at once, %d dial failures) in %s: %d refused (503, %d with Retry-After), %d held (%d B of a %d B budget), %d other answers; heap in use %d MiB at start, peak %d MiB (growth %d MiB, bound %d MiB), live after GC %d MiB (bound %d MiB); %d goroutines; bearer login during the flood: %s; signed login during the flood: %d",
		conns, maxOpen, dialFailed.Load(), flooded.Round(time.Millisecond), refused.Load(), retryAfter.Load(), budget.InUse()/perHeld, budget.InUse(), budgetBytes,
		otherStatus.Load(), base.HeapInuse>>20, peakHeap>>20, growth>>20, peakLimit>>20, live.HeapAlloc>>20, liveLimit>>20, runtime.NumGoroutine(), bearerLatency.Round(time.Microsecond), signedDuring)
	if peakHeap > peakLimit {
		t.Errorf("heap peaked at %d MiB under %d stalled unauthenticated connections, bound %d MiB", peakHeap>>20, conns, peakLimit>>20)
	}
	if int64(live.HeapAlloc) > liveLimit {
		t.Errorf("live heap %d MiB under %d stalled unauthenticated connections, bound %d MiB", live.HeapAlloc>>20, conns, liveLimit>>20)
	}
	if dialFailed.Load() > int64(conns)/100 {
		t.Errorf("%d of %d dials failed: the flood did not reach the server", dialFailed.Load(), conns)
	}
	if want := int64(conns) - budgetBytes/perHeld; want > 0 && refused.Load() < want/2 {
		t.Errorf("%d refusals, want about %d (the budget holds %d connections)", refused.Load(), want, budgetBytes/perHeld)
	}
	if refused.Load() != retryAfter.Load() {
		t.Errorf("%d refusals, %d with Retry-After", refused.Load(), retryAfter.Load())
	}
	if otherStatus.Load() != 0 {
		t.Errorf("%d connections got another answer than 503", otherStatus.Load())
	}
	if signedDuring == http.StatusServiceUnavailable && signedHeader.Get("Retry-After") == "" {
		t.Error("signed login refused during the flood without Retry-After")
	}

	// The flood ends: its budget comes back, and signed logins are answered.
	held.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	wg.Wait()
	eventually(t, "the budget is given back", func() error {
		if u := budget.InUse(); u != 0 {
			return fmt.Errorf("%d B still held", u)
		}
		return nil
	})
	if st, b, _ := ts.post(t, "/hooks/v1/post-login", readPayload(t, "native/post-login.request.json"), signNative("msg_after", t0)); st != http.StatusOK {
		t.Fatalf("signed login after the flood: %d %s", st, b)
	}
}

// raiseFileLimit raises the soft limit of open files to the hard one and
// returns it.
func raiseFileLimit(t *testing.T) int {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur < rl.Max {
		old := rl.Cur
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rl.Cur = old; _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) })
	}
	return int(rl.Cur)
}

// sampleHeap records the peak of HeapInuse until stopped.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() {
		select {
		case <-done:
		default:
			close(done)
		}
		wg.Wait()
	}
}

// eventually polls f until it succeeds, bounded generously for a loaded
// -race run; the last error names what never happened.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
