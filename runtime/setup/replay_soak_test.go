package setup_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// TestSoakReplay is issue 14's signed-webhook soak, behind
// CLAIMSMITH_SOAK_LOGINS (`make soak-replay` runs 500,000): that many
// signed native logins, alternating between two nodes on one Redis store,
// as fast as CLAIMSMITH_SOAK_WORKERS concurrent callers (default 32) get
// them answered; every one must be answered 200 (no 503: neither the
// replay store nor anything else refuses sustained signed traffic). Then
// a replay of a sample of them (the first, the last and 2,000 at random)
// is refused on both nodes: 401, "replay" while its timestamp is within the
// window.
func TestSoakReplay(t *testing.T) {
	total, _ := strconv.Atoi(os.Getenv("CLAIMSMITH_SOAK_LOGINS"))
	if total <= 0 {
		t.Skip("set CLAIMSMITH_SOAK_LOGINS (make soak-replay) to run the signed-webhook soak")
	}
	workers := 32
	if w, _ := strconv.Atoi(os.Getenv("CLAIMSMITH_SOAK_WORKERS")); w > 0 {
		workers = w
	}
	srv := redistest.Start(t, redistest.Options{})
	// The production Redis timeouts (the replay tests' 300ms ones make a
	// dead Redis quick to notice, and a loaded machine's slow reply a 503).
	conf := fmt.Sprintf(replayConfig, "fail_closed", srv.Addr())
	for _, l := range []string{"  dial_timeout: 300ms\n", "  read_timeout: 300ms\n", "  write_timeout: 300ms\n"} {
		conf = strings.Replace(conf, l, "", 1)
	}
	path := filepath.Join(t.TempDir(), "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := []*replayNode{startReplayNode(t, path), startReplayNode(t, path)}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}

	sent := make([]time.Time, total) // each login's signed timestamp
	var (
		next     atomic.Int64
		statuses sync.Map // status → *atomic.Int64
		firstBad atomic.Value
		wg       sync.WaitGroup
	)
	count := func(st int) {
		v, _ := statuses.LoadOrStore(st, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	do := func(n *replayNode, r signedRequest) (int, string, error) {
		req, err := http.NewRequest(http.MethodPost, n.base+r.path, bytes.NewReader(r.body))
		if err != nil {
			return 0, "", err
		}
		req.Header = r.h.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				now := time.Now()
				sent[i] = now
				st, body, err := do(nodes[i%2], nativeSigned(t, fmt.Sprintf("msg_soak_%d", i), now))
				if err != nil {
					st, body = -1, err.Error()
				}
				count(st)
				if st != http.StatusOK {
					firstBad.CompareAndSwap(nil, fmt.Sprintf("login %d: %d %s", i, st, body))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var summary []string
	statuses.Range(func(k, v any) bool {
		summary = append(summary, fmt.Sprintf("%v×%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("%d signed logins on 2 nodes in %s: %.0f logins/s with %d workers; statuses %s",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), workers, strings.Join(summary, " "))
	if bad := firstBad.Load(); bad != nil {
		t.Fatalf("not every login was answered 200; first: %s", bad)
	}

	// Replays of a sample, on both nodes.
	sample := []int{0, total - 1}
	for range min(2000, total) {
		sample = append(sample, rand.IntN(total))
	}
	var inWindow, stale int
	for _, i := range sample {
		r := nativeSigned(t, fmt.Sprintf("msg_soak_%d", i), sent[i])
		for k, n := range nodes {
			st, body, err := do(n, r)
			if err != nil {
				t.Fatal(err)
			}
			if st != http.StatusUnauthorized {
				t.Fatalf("replay of login %d on node %c: %d %s, want 401", i, 'A'+k, st, body)
			}
			switch {
			case strings.Contains(body, "replay"):
				inWindow++
			case strings.Contains(body, "tolerance"):
				stale++
			default:
				t.Fatalf("replay of login %d on node %c refused for another reason: %s", i, 'A'+k, body)
			}
		}
	}
	t.Logf("replays of %d sampled logins on both nodes: %d refused as replays, %d as outside the tolerance window", len(sample), inWindow, stale)
}
