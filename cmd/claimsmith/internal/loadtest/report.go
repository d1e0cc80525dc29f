package loadtest

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Stats summarises latencies.
type Stats struct {
	Count              int
	P50, P90, P99, Max time.Duration
	Mean               time.Duration
}

// Report is the outcome of one run.
type Report struct {
	TargetRate float64
	Elapsed    time.Duration
	Sent       int
	Dropped    int
	Errors     int
	Throughput float64 // successful responses per second
	All        Stats
	// Service is the latency from sending to the end of the answer, without
	// the generator's dispatch delay (All includes it, as it must).
	Service   Stats
	ByKind    map[string]Stats
	ErrByKind map[string]int
	Status    map[int]int
	// FirstErrors are a few distinct transport errors, to say why.
	FirstErrors []string
	Samples     []Sample
}

func newReport(opts Options, samples []Sample, dropped int, elapsed time.Duration) *Report {
	r := &Report{
		TargetRate: opts.Rate, Elapsed: elapsed, Sent: len(samples), Dropped: dropped,
		ByKind: map[string]Stats{}, ErrByKind: map[string]int{}, Status: map[int]int{}, Samples: samples,
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i].At < samples[j].At })
	byKind := map[string][]time.Duration{}
	all := make([]time.Duration, 0, len(samples))
	svc := make([]time.Duration, 0, len(samples))
	ok := 0
	for _, s := range samples {
		r.Status[s.Status]++
		all = append(all, s.Latency)
		if s.Service > 0 {
			svc = append(svc, s.Service)
		}
		byKind[s.Kind] = append(byKind[s.Kind], s.Latency)
		if s.Err != "" && len(r.FirstErrors) < 3 && !slices.Contains(r.FirstErrors, s.Err) {
			r.FirstErrors = append(r.FirstErrors, s.Err)
		}
		if s.OK {
			ok++
		} else {
			r.Errors++
			r.ErrByKind[s.Kind]++
		}
	}
	r.All = stats(all)
	r.Service = stats(svc)
	for k, v := range byKind {
		r.ByKind[k] = stats(v)
	}
	if elapsed > 0 {
		r.Throughput = float64(ok) / elapsed.Seconds()
	}
	return r
}

func stats(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	return Stats{Count: len(s), P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: s[len(s)-1], Mean: sum / time.Duration(len(s))}
}

// Healthy reports whether the server kept up with the target rate: nearly
// every request scheduled was sent and answered as expected.
func (r *Report) Healthy(maxP99 time.Duration) bool {
	want := r.TargetRate * r.Elapsed.Seconds()
	if want <= 0 {
		return false
	}
	errRate := float64(r.Errors+r.Dropped) / want
	return errRate < 0.01 && r.All.P99 <= maxP99 && float64(r.Sent) >= 0.95*want
}

// WriteText prints the report as a table.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "target %.0f req/s for %s: sent %d, dropped %d, errors %d, throughput %.0f ok/s\n",
		r.TargetRate, r.Elapsed.Round(time.Millisecond), r.Sent, r.Dropped, r.Errors, r.Throughput)
	fmt.Fprintf(w, "%-14s %8s %10s %10s %10s %10s %7s\n", "kind", "count", "p50", "p90", "p99", "max", "errors")
	kinds := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	row := func(name string, s Stats, errs int) {
		fmt.Fprintf(w, "%-14s %8d %10s %10s %10s %10s %7d\n", name, s.Count, fmtDur(s.P50), fmtDur(s.P90), fmtDur(s.P99), fmtDur(s.Max), errs)
	}
	for _, k := range kinds {
		row(k, r.ByKind[k], r.ErrByKind[k])
	}
	row("all", r.All, r.Errors)
	fmt.Fprintf(w, "%-14s %8d %10s %10s %10s %10s   (send to answer, without the generator's dispatch delay)\n",
		"all-service", r.Service.Count, fmtDur(r.Service.P50), fmtDur(r.Service.P90), fmtDur(r.Service.P99), fmtDur(r.Service.Max))
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		label := fmt.Sprint(c)
		if c == 0 {
			label = "transport-error"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", label, r.Status[c]))
	}
	fmt.Fprintf(w, "statuses: %s\n", strings.Join(parts, " "))
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "transport error: %s\n", e)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

// WriteSVG draws latency over time: p50, p99 and max per time bucket on a
// log-scaled axis, plus the achieved rate, so a regression or a stall shows at
// a glance.
func (r *Report) WriteSVG(w io.Writer, title string) error {
	const (
		width, height = 960, 420
		left, right   = 70, 20
		top, bottom   = 40, 50
		plotW, plotH  = width - left - right, height - top - bottom
	)
	if len(r.Samples) == 0 {
		_, err := fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d"><text x="20" y="40">no samples</text></svg>`, width, height)
		return err
	}
	span := r.Samples[len(r.Samples)-1].At
	buckets := 100
	bw := span / time.Duration(buckets)
	if bw < 10*time.Millisecond {
		bw = 10 * time.Millisecond
		buckets = int(span/bw) + 1
	}
	type bucket struct{ lat []time.Duration }
	bs := make([]bucket, buckets+1)
	for _, s := range r.Samples {
		i := int(s.At / bw)
		if i > buckets {
			i = buckets
		}
		bs[i].lat = append(bs[i].lat, s.Latency)
	}
	minL, maxL := time.Duration(1<<62), time.Duration(0)
	for _, s := range r.Samples {
		minL = min(minL, s.Latency)
		maxL = max(maxL, s.Latency)
	}
	minL = max(minL, 10*time.Microsecond)
	lo, hi := log10(float64(minL)), log10(float64(maxL))+0.1
	if hi-lo < 1 {
		hi = lo + 1
	}
	y := func(d time.Duration) float64 {
		v := log10(float64(max(d, minL)))
		return top + plotH - (v-lo)/(hi-lo)*plotH
	}
	x := func(i int) float64 { return left + float64(i)/float64(len(bs)-1)*plotW }
	line := func(q float64) string {
		var b strings.Builder
		for i, bk := range bs {
			if len(bk.lat) == 0 {
				continue
			}
			st := stats(bk.lat)
			v := st.P50
			switch q {
			case 0.99:
				v = st.P99
			case 1:
				v = st.Max
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(v))
		}
		return b.String()
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&sb, `<text x="%d" y="22" font-size="15">%s</text>`+"\n", left, escape(title))
	fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", left, top, plotW, plotH)
	for e := int(lo); float64(e) <= hi; e++ {
		d := time.Duration(pow10(e))
		if float64(e) < lo {
			continue
		}
		yy := y(d)
		fmt.Fprintf(&sb, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left, left+plotW, yy, yy, left-6, yy+4, fmtDur(d))
	}
	for i := 0; i <= 4; i++ {
		xx := left + float64(i)/4*plotW
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xx, top+plotH+18, (span * time.Duration(i) / 4).Round(100*time.Millisecond))
	}
	fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">time since start (latency axis log-scaled)</text>`+"\n", left+plotW/2, height-12)
	for _, l := range []struct {
		q     float64
		color string
		name  string
	}{{1, "#d62728", "max"}, {0.99, "#ff7f0e", "p99"}, {0.5, "#1f77b4", "p50"}} {
		fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", l.color, line(l.q))
	}
	fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="#1f77b4">p50</text><text x="%d" y="%d" fill="#ff7f0e">p99</text><text x="%d" y="%d" fill="#d62728">max</text>`+"\n",
		width-180, 22, width-140, 22, width-100, 22)
	fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="#555">%.0f req/s target, %.0f ok/s, p50 %s, p99 %s, errors %d</text>`+"\n",
		left+300, 22, r.TargetRate, r.Throughput, fmtDur(r.All.P50), fmtDur(r.All.P99), r.Errors+r.Dropped)
	sb.WriteString("</svg>\n")
	_, err := io.WriteString(w, sb.String())
	return err
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
