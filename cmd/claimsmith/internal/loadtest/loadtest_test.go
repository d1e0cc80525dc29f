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

func TestRunCountsAndStatuses(t *testing.T) {
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
	rep, err := Run(context.Background(), Options{BaseURL: srv.URL, Rate: 400, Duration: 500 * time.Millisecond, Seed: 1}, mix)
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	mix, _ := NewWeighted(map[string]int{"x": 1}, map[string][]*Request{"x": {{Kind: "x", Method: "GET", Path: "/", Expect: []int{200}}}})
	rep, err := Run(context.Background(), Options{BaseURL: srv.URL, Rate: 100, Duration: 200 * time.Millisecond}, mix)
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
	maxRate, rep, err := FindMax(context.Background(), Options{BaseURL: srv.URL, Concurrency: 64},
		mix, SearchOptions{Start: 25, Limit: 3200, Step: 400 * time.Millisecond, MaxP99: 200 * time.Millisecond, Refine: 1})
	if err != nil {
		t.Fatal(err)
	}
	if maxRate < 25 || maxRate > 400 || rep == nil {
		t.Fatalf("max sustainable rate %v is not plausible for a ~100 req/s server", maxRate)
	}
}
