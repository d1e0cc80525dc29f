// Package loadtest drives a running claimsmith server open-loop: requests are
// scheduled at a fixed rate whatever the server's latency, and each latency is
// measured from the request's scheduled start, so a slow server cannot hide
// its queueing delay (no coordinated omission).
package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one prepared HTTP request of the mix. Body is sent as is; the
// Sign hook, when set, adds per-request headers (signatures, timestamps).
type Request struct {
	Kind   string
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Sign   func(h http.Header, body []byte, now time.Time)
	// Expect lists the statuses that count as success for this request.
	Expect []int
}

// Mix picks the next request. It must be safe for concurrent use.
type Mix interface {
	Next(r *rand.Rand) *Request
}

// Weighted is a Mix choosing among request sets by weight.
type Weighted struct {
	Kinds   []string
	Weights []int
	Sets    map[string][]*Request
	total   int
}

// NewWeighted builds a Weighted mix; kinds with weight 0 or no requests are dropped.
func NewWeighted(weights map[string]int, sets map[string][]*Request) (*Weighted, error) {
	w := &Weighted{Sets: sets}
	kinds := make([]string, 0, len(weights))
	for k := range weights {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		if weights[k] <= 0 {
			continue
		}
		if len(sets[k]) == 0 {
			return nil, fmt.Errorf("mix: no requests prepared for kind %q", k)
		}
		w.Kinds = append(w.Kinds, k)
		w.Weights = append(w.Weights, weights[k])
		w.total += weights[k]
	}
	if w.total == 0 {
		return nil, errors.New("mix: every weight is zero")
	}
	return w, nil
}

// Next implements Mix.
func (w *Weighted) Next(r *rand.Rand) *Request {
	n := r.IntN(w.total)
	for i, wt := range w.Weights {
		if n < wt {
			set := w.Sets[w.Kinds[i]]
			return set[r.IntN(len(set))]
		}
		n -= wt
	}
	set := w.Sets[w.Kinds[0]]
	return set[0]
}

// Sample is one completed request.
type Sample struct {
	At      time.Duration // scheduled start, from the run's start
	Latency time.Duration // from scheduled start to the end of the body
	Kind    string
	Status  int
	OK      bool
	Err     string // transport error, when there was no response
	// Service is the time from sending the request to the end of the
	// answer: Latency minus the generator's own dispatch delay.
	Service time.Duration
}

// Options configure a run.
type Options struct {
	BaseURL     string
	Rate        float64       // requests per second
	Duration    time.Duration // how long to send
	Concurrency int           // max requests in flight (0: 256)
	Timeout     time.Duration // per request (0: 5 s)
	// Client, when set, sends through net/http (the portable generator);
	// nil: the event loop (runLoop) for plain http on Linux, else a
	// keep-alive net/http client sized to Concurrency.
	Client *http.Client
	Seed   uint64
}

// errNoLoop: runLoop cannot serve this run (not plain http, not Linux);
// Run uses the net/http generator.
var errNoLoop = errors.New("loadtest: the event loop needs a plain http URL on linux")

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Run sends requests from mix at opts.Rate for opts.Duration and returns the
// samples. Requests that could not start because every worker was busy are
// counted as dropped; they are errors of the run, not silently skipped.
func Run(ctx context.Context, opts Options, mix Mix) (*Report, error) {
	if opts.Rate <= 0 || opts.Duration <= 0 {
		return nil, errors.New("loadtest: rate and duration must be positive")
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = 256
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if opts.Client == nil {
		if rep, err := runLoop(ctx, opts, mix, conc, timeout); !errors.Is(err, errNoLoop) {
			return rep, err
		}
	}
	return runHTTP(ctx, opts, mix, conc, timeout)
}

// runHTTP is the portable generator: a goroutine per request through
// net/http. Its sends wait on Go timers, so they leave up to about a
// millisecond late on an idle machine (counted, as they must be, in the
// latency); runLoop does not have that error.
func runHTTP(ctx context.Context, opts Options, mix Mix, conc int, timeout time.Duration) (*Report, error) {
	client := opts.Client
	if client == nil {
		tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, IdleConnTimeout: 90 * time.Second}
		client = &http.Client{Transport: tr, Timeout: timeout}
		defer tr.CloseIdleConnections()
	}
	total := int(opts.Rate * opts.Duration.Seconds())
	interval := time.Duration(float64(time.Second) / opts.Rate)
	samples := make([]Sample, 0, total)
	var mu sync.Mutex
	var dropped atomic.Int64
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	rng := newRand(opts.Seed)

	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				i = total
				continue
			case <-time.After(d):
			}
		}
		req := mix.Next(rng)
		select {
		case sem <- struct{}{}:
		default:
			dropped.Add(1)
			continue
		}
		wg.Add(1)
		go func(at time.Time, req *Request) {
			defer wg.Done()
			defer func() { <-sem }()
			s := do(ctx, client, opts.BaseURL, req, at)
			s.At = at.Sub(start)
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		}(due, req)
	}
	wg.Wait()
	elapsed := time.Since(start)
	return newReport(opts, samples, int(dropped.Load()), elapsed), nil
}

func do(ctx context.Context, c *http.Client, base string, r *Request, scheduled time.Time) Sample {
	hr, err := http.NewRequestWithContext(ctx, r.Method, base+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return Sample{Kind: r.Kind, Latency: time.Since(scheduled)}
	}
	for k, v := range r.Header {
		hr.Header[k] = v
	}
	sent := time.Now()
	if r.Sign != nil {
		r.Sign(hr.Header, r.Body, sent)
	}
	resp, err := c.Do(hr)
	if err != nil {
		return Sample{Kind: r.Kind, Latency: time.Since(scheduled), Err: err.Error()}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	end := time.Now()
	return Sample{Kind: r.Kind, Status: resp.StatusCode, OK: slices.Contains(r.Expect, resp.StatusCode), Latency: end.Sub(scheduled), Service: end.Sub(sent)}
}
