package dashboard

import (
	"context"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The rules page: the serving pipeline's rules in order (kind, timeout,
// what an error does) with each rule's runs, errors, timeouts and panics
// over the last RecentWindow and since the server started, read from the
// server's metrics (claimsmith_rule_duration_seconds,
// claimsmith_rule_errors_total). The recent figures are differences from
// a sample SampleRules took about RecentWindow ago.

// RecentWindow is the rules page's "recent" span.
const RecentWindow = 15 * time.Minute

func (d *Dashboard) rulesPage() Page {
	return Page{Name: "rules", Title: "Rules", Href: Prefix + "rules", Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "rules", Handle: d.rulesList},
	}}
}

// ruleCounts are one rule's counters.
type ruleCounts struct {
	Runs, Errors, Timeouts, Panics uint64
	seconds                        float64
}

// minus is c less an earlier sample (a counter that went back, after a
// restart of the series, counts from zero).
func (c ruleCounts) minus(o ruleCounts) ruleCounts {
	sub := func(a, b uint64) uint64 {
		if a < b {
			return a
		}
		return a - b
	}
	return ruleCounts{Runs: sub(c.Runs, o.Runs), Errors: sub(c.Errors, o.Errors), Timeouts: sub(c.Timeouts, o.Timeouts), Panics: sub(c.Panics, o.Panics)}
}

type ruleSample struct {
	at     time.Time
	counts map[string]ruleCounts
}

// ruleHistory keeps the samples of the last RecentWindow and a bit.
type ruleHistory struct {
	mu      sync.Mutex
	samples []ruleSample
}

func (h *ruleHistory) add(s ruleSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	// Keep one sample older than the window: the baseline.
	for len(h.samples) > 2 && !h.samples[1].at.After(s.at.Add(-RecentWindow)) {
		h.samples = h.samples[1:]
	}
}

// baseline is the newest sample at least RecentWindow old, else the
// oldest one; ok is false without any sample.
func (h *ruleHistory) baseline(now time.Time) (ruleSample, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) == 0 {
		return ruleSample{}, false
	}
	best := h.samples[0]
	for _, s := range h.samples {
		if !s.at.After(now.Add(-RecentWindow)) {
			best = s
		}
	}
	return best, true
}

// SampleRules records the rules' counters every interval until ctx ends,
// so the rules page can tell recent failures from old ones. The server
// runs it while it serves.
func (d *Dashboard) SampleRules(ctx context.Context, every time.Duration) {
	if d.cfg.Metrics == nil {
		return
	}
	d.sampleRules()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.sampleRules()
		}
	}
}

func (d *Dashboard) sampleRules() {
	counts, err := d.ruleCounts()
	if err != nil {
		d.log.Warn("dashboard: reading the rule metrics", "err", err)
		return
	}
	d.history.add(ruleSample{at: d.now(), counts: counts})
}

// ruleCounts reads every rule's counters from the metrics.
func (d *Dashboard) ruleCounts() (map[string]ruleCounts, error) {
	out := map[string]ruleCounts{}
	mfs, err := d.cfg.Metrics.Gather()
	if err != nil {
		return out, err
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "claimsmith_rule_duration_seconds":
			for _, m := range mf.GetMetric() {
				rule := label(m, "rule")
				c := out[rule]
				c.Runs += m.GetHistogram().GetSampleCount()
				c.seconds += m.GetHistogram().GetSampleSum()
				out[rule] = c
			}
		case "claimsmith_rule_errors_total":
			for _, m := range mf.GetMetric() {
				rule := label(m, "rule")
				c := out[rule]
				n := uint64(m.GetCounter().GetValue())
				switch label(m, "cause") {
				case "timeout":
					c.Timeouts += n
				case "panic":
					c.Panics += n
				default:
					c.Errors += n
				}
				out[rule] = c
			}
		}
	}
	return out, nil
}

type ruleRow struct {
	Position            int
	Name, Kind, OnError string
	Timeout             time.Duration
	Total, Recent       ruleCounts
	MeanMicros          float64
}

type rulesData struct {
	Available, Metrics bool
	// RecentSince is when the recent figures start (zero: no sample yet).
	RecentSince  time.Time
	Rows         []ruleRow
	MetricsError string
}

func (d *Dashboard) rulesList(w http.ResponseWriter, r *http.Request, c *Call) error {
	var data rulesData
	if d.cfg.Rules != nil {
		data.Available = true
		var counts map[string]ruleCounts
		var base ruleSample
		if d.cfg.Metrics != nil {
			var err error
			counts, err = d.ruleCounts()
			if err != nil {
				data.MetricsError = "Metrics could not be read: " + err.Error()
			}
			data.Metrics = err == nil
			if b, ok := d.history.baseline(d.now()); ok {
				base, data.RecentSince = b, b.at
			}
		}
		for i, s := range d.cfg.Rules() {
			row := ruleRow{Position: i + 1, Name: s.Name, Kind: s.Kind, OnError: s.OnError.String(), Timeout: s.Timeout, Total: counts[s.Name]}
			if row.Total.Runs > 0 {
				row.MeanMicros = row.Total.seconds / float64(row.Total.Runs) * 1e6
			}
			if !data.RecentSince.IsZero() {
				row.Recent = row.Total.minus(base.counts[s.Name])
			}
			data.Rows = append(data.Rows, row)
		}
	}
	d.Render(w, c, http.StatusOK, "rules", "Rules", data, nil)
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
