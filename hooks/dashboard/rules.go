package dashboard

import (
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The rules page: the serving pipeline's rules in order (kind, timeout,
// what an error does) with each rule's runs, errors, timeouts and panics
// since the server started, read from the server's metrics
// (claimsmith_rule_duration_seconds, claimsmith_rule_errors_total).

func (d *Dashboard) rulesPage() Page {
	return Page{Name: "rules", Title: "Rules", Href: Prefix + "rules", Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "rules", Handle: d.rulesList},
	}}
}

type ruleRow struct {
	Position                 int
	Name, Kind, OnError      string
	Timeout                  time.Duration
	Runs                     uint64
	Errors, Timeouts, Panics uint64
	MeanMicros               float64
}

type rulesData struct {
	Available, Metrics bool
	Rows               []ruleRow
	MetricsError       string
}

func (d *Dashboard) rulesList(w http.ResponseWriter, r *http.Request, c *Call) error {
	var data rulesData
	if d.cfg.Rules != nil {
		data.Available = true
		runs, sums, errs := map[string]uint64{}, map[string]float64{}, map[string]map[string]uint64{}
		if d.cfg.Metrics != nil {
			mfs, err := d.cfg.Metrics.Gather()
			if err != nil {
				data.MetricsError = "Metrics could not be read: " + err.Error()
			}
			data.Metrics = err == nil
			for _, mf := range mfs {
				switch mf.GetName() {
				case "claimsmith_rule_duration_seconds":
					for _, m := range mf.GetMetric() {
						rule := label(m, "rule")
						runs[rule] += m.GetHistogram().GetSampleCount()
						sums[rule] += m.GetHistogram().GetSampleSum()
					}
				case "claimsmith_rule_errors_total":
					for _, m := range mf.GetMetric() {
						rule := label(m, "rule")
						if errs[rule] == nil {
							errs[rule] = map[string]uint64{}
						}
						errs[rule][label(m, "cause")] += uint64(m.GetCounter().GetValue())
					}
				}
			}
		}
		for i, s := range d.cfg.Rules() {
			row := ruleRow{Position: i + 1, Name: s.Name, Kind: s.Kind, OnError: s.OnError.String(), Timeout: s.Timeout, Runs: runs[s.Name],
				Errors: errs[s.Name]["error"], Timeouts: errs[s.Name]["timeout"], Panics: errs[s.Name]["panic"]}
			if row.Runs > 0 {
				row.MeanMicros = sums[s.Name] / float64(row.Runs) * 1e6
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
