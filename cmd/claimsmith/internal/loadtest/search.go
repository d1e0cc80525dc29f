package loadtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// SearchOptions bound the search for the maximum sustainable rate.
type SearchOptions struct {
	Start  float64       // first rate tried (req/s)
	Limit  float64       // never go above this rate
	Step   time.Duration // how long each run of a probe lasts
	MaxP99 time.Duration // a run whose p99 exceeds this is not sustainable (default 2ms)
	Refine int           // bisection steps after the first failing doubling (default 4)
	// Repeats is the most runs of one probe (default 5, at least 2): a
	// probe is repeated until two runs in a row agree on the verdict; if
	// none do, the majority decides and the probe is marked unstable.
	Repeats  int
	Progress func(r *Report)
}

// Probe is the outcome of one probed rate: every run's p99 (the spread a
// shared machine shows) and the verdict.
type Probe struct {
	Rate    float64
	Healthy bool
	// Stable: two runs in a row agreed on the verdict.
	Stable bool
	P99s   []time.Duration
	Report *Report // the last run
}

// Spread is the lowest and highest p99 of the probe's runs.
func (p Probe) Spread() (lo, hi time.Duration) {
	if len(p.P99s) == 0 {
		return 0, 0
	}
	return slices.Min(p.P99s), slices.Max(p.P99s)
}

// Search is the outcome of FindMax.
type Search struct {
	// Max is the highest healthy rate; every probed rate below it was
	// healthy too, every probed rate above it was not (the search is
	// monotonic: a rate is never probed above a failed one or below a
	// passed one).
	Max    float64
	Report *Report // Max's last run
	Probes []Probe // in the order probed
}

// WriteText lists the probes with their spread.
func (s *Search) WriteText(w io.Writer, maxP99 time.Duration) {
	fmt.Fprintf(w, "search (p99 ≤ %s, errors+drops < 1%%, each rate repeated until two runs agree):\n", maxP99)
	for _, p := range s.Probes {
		lo, hi := p.Spread()
		verdict := "fails"
		if p.Healthy {
			verdict = "meets"
		}
		note := ""
		if !p.Stable {
			note = " (unstable: majority of runs)"
		}
		fmt.Fprintf(w, "  %7.0f req/s  %s  runs %d  p99 %s … %s%s\n", p.Rate, verdict, len(p.P99s), fmtDur(lo), fmtDur(hi), note)
	}
}

// FindMax doubles the rate until a probe is unhealthy (errors or drops over
// 1%, p99 over MaxP99, or fewer than 95% of the scheduled requests sent),
// then bisects between the last healthy and the first unhealthy rate. Each
// probe is repeated until its verdict is stable (see SearchOptions.Repeats).
func FindMax(ctx context.Context, base Options, mix Mix, so SearchOptions) (*Search, error) {
	if so.Start <= 0 {
		so.Start = 100
	}
	if so.Limit <= 0 {
		so.Limit = 200000
	}
	if so.Step <= 0 {
		so.Step = 2 * time.Second
	}
	if so.MaxP99 <= 0 {
		so.MaxP99 = 2 * time.Millisecond
	}
	if so.Refine <= 0 {
		so.Refine = 4
	}
	if so.Repeats < 2 {
		so.Repeats = 5
	}
	s := &Search{}
	probe := func(rate float64) (Probe, error) {
		p := Probe{Rate: rate}
		var verdicts []bool
		for len(verdicts) < so.Repeats {
			o := base
			o.Rate, o.Duration = rate, so.Step
			r, err := Run(ctx, o, mix)
			if err != nil {
				return p, err
			}
			if so.Progress != nil {
				so.Progress(r)
			}
			ok := r.Healthy(so.MaxP99)
			verdicts = append(verdicts, ok)
			p.P99s = append(p.P99s, r.All.P99)
			p.Report = r
			if n := len(verdicts); n >= 2 && verdicts[n-1] == verdicts[n-2] {
				p.Healthy, p.Stable = ok, true
				break
			}
			if ctx.Err() != nil {
				return p, ctx.Err()
			}
		}
		if !p.Stable {
			good := 0
			for _, v := range verdicts {
				if v {
					good++
				}
			}
			p.Healthy = 2*good > len(verdicts)
		}
		s.Probes = append(s.Probes, p)
		return p, nil
	}
	good, bad := 0.0, 0.0
	for rate := so.Start; rate <= so.Limit; rate *= 2 {
		p, err := probe(rate)
		if err != nil {
			return s, err
		}
		if !p.Healthy {
			bad = rate
			break
		}
		good, s.Max, s.Report = rate, rate, p.Report
	}
	for i := 0; i < so.Refine && good > 0 && bad > 0; i++ {
		mid := (good + bad) / 2
		p, err := probe(mid)
		if err != nil {
			return s, err
		}
		if p.Healthy {
			good, s.Max, s.Report = mid, mid, p.Report
		} else {
			bad = mid
		}
	}
	return s, nil
}
