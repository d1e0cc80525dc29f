package loadtest

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// generators: every behaviour test runs against both: the event loop (no
// Client) and net/http (a Client given).
var generators = []struct {
	name   string
	client func() *http.Client
}{
	{"loop", func() *http.Client { return nil }},
	{"net-http", func() *http.Client { return &http.Client{Timeout: 5 * time.Second} }},
}

func TestRunCountsAndStatuses(t *testing.T) {
	for _, g := range generators {
		t.Run(g.name, func(t *testing.T) { testRunCountsAndStatuses(t, g.client()) })
	}
}

func testRunCountsAndStatuses(t *testing.T, client *http.Client) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/deny" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	mix, err := NewWeighted(map[string]int{"ok": 3, "deny": 1}, map[string][]*Request{
		"ok":   {{Kind: "ok", Method: "POST", Path: "/ok", Body: []byte("{}"), Expect: []int{200}}},
		"deny": {{Kind: "deny", Method: "POST", Path: "/deny", Body: []byte("{}"), Expect: []int{403}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{BaseURL: srv.URL, Rate: 400, Duration: 500 * time.Millisecond, Seed: 1, Client: client}, mix)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent+rep.Dropped != 200 {
		t.Fatalf("sent %d + dropped %d, want 200 scheduled", rep.Sent, rep.Dropped)
	}
	if int64(rep.Sent) != hits.Load() {
		t.Fatalf("report says %d sent, server saw %d", rep.Sent, hits.Load())
	}
	if rep.Errors != 0 {
		t.Fatalf("expected statuses counted as errors: %+v", rep.Status)
	}
	if rep.ByKind["deny"].Count == 0 || rep.ByKind["ok"].Count <= rep.ByKind["deny"].Count {
		t.Fatalf("mix weights not honoured: %+v", rep.ByKind)
	}
	if rep.All.P50 <= 0 || rep.All.P99 < rep.All.P50 || rep.All.Max < rep.All.P99 {
		t.Fatalf("inconsistent quantiles: %+v", rep.All)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "403×") {
		t.Fatalf("status breakdown missing:\n%s", text.String())
	}
	var svg bytes.Buffer
	if err := rep.WriteSVG(&svg, "test <run>"); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&svg)
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
}

func TestUnexpectedStatusIsAnError(t *testing.T) {
	for _, g := range generators {
		t.Run(g.name, func(t *testing.T) { testUnexpectedStatusIsAnError(t, g.client()) })
	}
}

func testUnexpectedStatusIsAnError(t *testing.T, client *http.Client) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	mix, _ := NewWeighted(map[string]int{"x": 1}, map[string][]*Request{"x": {{Kind: "x", Method: "GET", Path: "/", Expect: []int{200}}}})
	rep, err := Run(context.Background(), Options{BaseURL: srv.URL, Rate: 100, Duration: 200 * time.Millisecond, Client: client}, mix)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != rep.Sent || rep.Healthy(time.Second) {
		t.Fatalf("500s must count as errors and make the run unhealthy: %+v", rep.Status)
	}
}

func TestFindMaxStopsAtSlowServer(t *testing.T) {
	// A server that can serve about 2 requests at a time for 20 ms each
	// sustains ~100 req/s; the search must settle below a few hundred.
	sem := make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sem <- struct{}{}
		time.Sleep(20 * time.Millisecond)
		<-sem
	}))
	defer srv.Close()
	mix, _ := NewWeighted(map[string]int{"x": 1}, map[string][]*Request{"x": {{Kind: "x", Method: "GET", Path: "/", Expect: []int{200}}}})
	s, err := FindMax(context.Background(), Options{BaseURL: srv.URL, Concurrency: 64},
		mix, SearchOptions{Start: 25, Limit: 3200, Step: 400 * time.Millisecond, MaxP99: 200 * time.Millisecond, Refine: 1, Repeats: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s.Max < 25 || s.Max > 400 || s.Report == nil {
		t.Fatalf("max sustainable rate %v is not plausible for a ~100 req/s server", s.Max)
	}
	checkMonotonic(t, s)
}

// checkMonotonic: every probe at or below Max met the SLO and every probe
// above failed; every probe ran at least twice.
func checkMonotonic(t *testing.T, s *Search) {
	t.Helper()
	for _, p := range s.Probes {
		if len(p.P99s) < 2 {
			t.Errorf("probe at %.0f ran %d time(s), want a repeat", p.Rate, len(p.P99s))
		}
		if p.Healthy != (p.Rate <= s.Max) {
			t.Errorf("not monotonic: probe %.0f healthy=%v, max %.0f", p.Rate, p.Healthy, s.Max)
		}
	}
}

// TestFindMaxLatencySLO: a server that answers every request but takes
// 3 ms from a rate on fails a 2 ms p99 SLO (the default) from that rate,
// however fast the lower rates were, and the search stops below it.
func TestFindMaxLatencySLO(t *testing.T) {
	var inFlight atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Slow once requests overlap: a stand-in for a saturated core,
		// decided by events (concurrency), not by the wall clock.
		if inFlight.Add(1) > 1 {
			time.Sleep(3 * time.Millisecond)
		}
		defer inFlight.Add(-1)
	}))
	defer srv.Close()
	mix, _ := NewWeighted(map[string]int{"x": 1}, map[string][]*Request{"x": {{Kind: "x", Method: "GET", Path: "/", Expect: []int{200}}}})
	s, err := FindMax(context.Background(), Options{BaseURL: srv.URL, Concurrency: 64},
		mix, SearchOptions{Start: 50, Limit: 6400, Step: 300 * time.Millisecond, Refine: 1, Repeats: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Probes) == 0 || s.Probes[len(s.Probes)-1].Healthy && s.Max >= 6400 {
		t.Fatalf("the search never found the SLO's limit: %+v", s.Probes)
	}
	checkMonotonic(t, s)
	var out bytes.Buffer
	s.WriteText(&out, 2*time.Millisecond)
	if !strings.Contains(out.String(), "fails") || !strings.Contains(out.String(), "p99 ") {
		t.Fatalf("search text:\n%s", out.String())
	}
}

// TestStallCountsForEveryScheduledRequest: the generator is open-loop and
// measures from each request's scheduled start, so a server that stalls
// shows the stall in every request scheduled during it — not only in the
// one request a closed-loop client would have waiting (coordinated
// omission). The server holds every request that arrives while a gate is
// closed (from its 20th request until 300 ms later); the requests due in
// that window must carry most of the wait.
func TestStallCountsForEveryScheduledRequest(t *testing.T) {
	for _, g := range generators {
		t.Run(g.name, func(t *testing.T) { testStallCountsForEveryScheduledRequest(t, g.client()) })
	}
}

func testStallCountsForEveryScheduledRequest(t *testing.T, client *http.Client) {
	var n atomic.Int64
	gate := make(chan struct{})
	var opened atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 20 {
			time.AfterFunc(300*time.Millisecond, func() { opened.Store(true); close(gate) })
		}
		if n.Load() >= 20 && !opened.Load() {
			<-gate
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	mix, err := NewWeighted(map[string]int{"ok": 1}, map[string][]*Request{
		"ok": {{Kind: "ok", Method: "POST", Path: "/", Body: []byte("{}"), Expect: []int{200}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{BaseURL: srv.URL, Rate: 200, Duration: time.Second, Seed: 1, Client: client}, mix)
	if err != nil {
		t.Fatal(err)
	}
	// 300 ms at 200 req/s: about 60 requests are due while the gate is
	// closed, and the earlier of them wait most of it. A closed-loop
	// client would have counted one slow request.
	slow := 0
	for _, s := range rep.Samples {
		if s.Latency >= 100*time.Millisecond {
			slow++
		}
	}
	if slow < 15 {
		t.Fatalf("%d requests measured ≥ 100 ms across a 300 ms stall at 200 req/s; open-loop measurement needs ≥ 15 (p99 %s, max %s)", slow, rep.All.P99, rep.All.Max)
	}
	if rep.All.Max < 250*time.Millisecond {
		t.Fatalf("max latency %s across a 300 ms stall", rep.All.Max)
	}
}

// TestLoopKeepsTheSchedule: the event loop sends every request, none
// before its scheduled time, and latency counts from the schedule.
func TestLoopKeepsTheSchedule(t *testing.T) {
	var early atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	mix, err := NewWeighted(map[string]int{"ok": 1}, map[string][]*Request{
		"ok": {{Kind: "ok", Method: "POST", Path: "/", Body: []byte("{}"), Expect: []int{200}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{BaseURL: srv.URL, Rate: 500, Duration: 400 * time.Millisecond, Seed: 1}, mix)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) != 200 || rep.Dropped != 0 {
		t.Fatalf("%d samples, %d dropped; want 200, 0", len(rep.Samples), rep.Dropped)
	}
	for _, s := range rep.Samples {
		// Service (from the actual send) can never exceed Latency (from
		// the schedule) unless the request left before its time.
		if s.Service > s.Latency {
			early.Add(1)
		}
	}
	if early.Load() != 0 {
		t.Fatalf("%d requests were sent before their scheduled time", early.Load())
	}
}
