package loadtest

import (
	"context"
	"time"
)

// SearchOptions bound the search for the maximum sustainable rate.
type SearchOptions struct {
	Start    float64       // first rate tried (req/s)
	Limit    float64       // never go above this rate
	Step     time.Duration // how long each probe runs
	MaxP99   time.Duration // a probe whose p99 exceeds this is not sustainable
	Refine   int           // bisection steps after the first failing doubling
	Progress func(r *Report)
}

// FindMax doubles the rate until a probe is unhealthy (errors or drops over
// 1%, p99 over MaxP99, or fewer than 95% of the scheduled requests sent),
// then bisects between the last healthy and the first unhealthy rate. It
// returns the highest healthy rate and its report.
func FindMax(ctx context.Context, base Options, mix Mix, so SearchOptions) (float64, *Report, error) {
	if so.Start <= 0 {
		so.Start = 100
	}
	if so.Limit <= 0 {
		so.Limit = 200000
	}
	if so.Step <= 0 {
		so.Step = 3 * time.Second
	}
	if so.MaxP99 <= 0 {
		so.MaxP99 = 50 * time.Millisecond
	}
	if so.Refine <= 0 {
		so.Refine = 3
	}
	probe := func(rate float64) (*Report, error) {
		o := base
		o.Rate, o.Duration = rate, so.Step
		r, err := Run(ctx, o, mix)
		if err == nil && so.Progress != nil {
			so.Progress(r)
		}
		return r, err
	}
	good, bad := 0.0, 0.0
	var goodReport *Report
	for rate := so.Start; rate <= so.Limit; rate *= 2 {
		r, err := probe(rate)
		if err != nil {
			return 0, nil, err
		}
		if !r.Healthy(so.MaxP99) {
			bad = rate
			break
		}
		good, goodReport = rate, r
		if ctx.Err() != nil {
			return good, goodReport, ctx.Err()
		}
	}
	if bad == 0 {
		return good, goodReport, nil
	}
	for i := 0; i < so.Refine && good > 0; i++ {
		mid := (good + bad) / 2
		r, err := probe(mid)
		if err != nil {
			return 0, nil, err
		}
		if r.Healthy(so.MaxP99) {
			good, goodReport = mid, r
		} else {
			bad = mid
		}
	}
	return good, goodReport, nil
}
