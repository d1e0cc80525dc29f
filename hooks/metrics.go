package hooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/claimsmith/claimsmith/runtime"
)

// PatternMetrics serves the Prometheus metrics of the registry cmd creates.
const PatternMetrics = "GET /metrics"

// LabelOps is the metrics label of the operator's routes (/metrics,
// /api/reload).
const LabelOps = "ops"

// Metrics are the server's Prometheus collectors, registered on a registry
// the caller creates (never the global default one). Label values are
// resolved once per route and per rule, so the login path pays atomic adds
// and histogram observations, not label hashing or allocation.
//
// Series:
//
//	claimsmith_http_requests_total{route,dialect,status}        counter
//	claimsmith_http_request_duration_seconds{route,dialect}     histogram
//	claimsmith_rule_duration_seconds{rule,kind}                 histogram
//	claimsmith_rule_errors_total{rule,cause}                    counter (cause: error|panic|timeout)
//	claimsmith_login_decisions_total{outcome,code}              counter (outcome: allowed|denied|error)
//	claimsmith_store_errors_total{op}                           counter
//	claimsmith_config_reloads_total{result}                     counter (result: ok|rejected)
//	claimsmith_config_generation                                gauge
//	claimsmith_config_last_reload_success_timestamp_seconds     gauge
//	claimsmith_webhook_replay_ids{verifier}                     gauge
//	claimsmith_webhook_replay_capacity{verifier}                gauge
//	claimsmith_webhook_replay_refusals_total{verifier,reason}   counter (reason: replay|unavailable)
//
// hooks.BodyBudget registers claimsmith_unauthenticated_body_bytes,
// claimsmith_unauthenticated_body_budget_bytes and
// claimsmith_unauthenticated_body_refusals_total itself.
type Metrics struct {
	replayIDs, replayCap *prometheus.GaugeVec
	replayRefusals       *prometheus.CounterVec

	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	ruleDur   *prometheus.HistogramVec
	ruleErrs  *prometheus.CounterVec
	decisions *prometheus.CounterVec
	storeErrs *prometheus.CounterVec
	reloads   *prometheus.CounterVec

	generation  prometheus.Gauge
	lastReload  prometheus.Gauge
	allowed     prometheus.Counter
	runFailed   prometheus.Counter
	deniedCodes map[string]prometheus.Counter // pre-resolved for the known codes
	reloadOK    prometheus.Counter
	reloadBad   prometheus.Counter
	// writers recycles the status-recording wrappers (one per request).
	writers sync.Pool
}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("%w: metrics: a registerer is required", runtime.ErrInvalid)
	}
	// Logins take 100 µs to a few ms; IdPs give up after 5–30 s.
	httpBuckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	ruleBuckets := []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claimsmith_http_requests_total",
			Help: "HTTP requests by route pattern, dialect (the caller family the route serves: an IdP dialect, oauth, discovery, admin, ops) and status code.",
		}, []string{"route", "dialect", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "claimsmith_http_request_duration_seconds",
			Help:    "Time from routing a request to the end of its handler, by route pattern and dialect.",
			Buckets: httpBuckets,
		}, []string{"route", "dialect"}),
		ruleDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "claimsmith_rule_duration_seconds",
			Help:    "Run time of one rule in one login, by rule name (the pipeline entry's name) and kind (built-in rule id or wasm).",
			Buckets: ruleBuckets,
		}, []string{"rule", "kind"}),
		ruleErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claimsmith_rule_errors_total",
			Help: "Rule failures by rule name and cause: timeout, panic (recovered) or error (anything else, wasm traps included).",
		}, []string{"rule", "cause"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claimsmith_login_decisions_total",
			Help: "Login decisions by outcome (allowed, denied, error: the run itself failed) and OAuth error code of a deny.",
		}, []string{"outcome", "code"}),
		storeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claimsmith_store_errors_total",
			Help: "Authorization and profile store errors on the login path by operation (not found is not an error).",
		}, []string{"op"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claimsmith_config_reloads_total",
			Help: "Configuration reloads (SIGHUP or POST /api/reload) by result: ok, or rejected (the old pipeline kept serving).",
		}, []string{"result"}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "claimsmith_config_generation",
			Help: "Generation of the pipeline and hook handlers serving logins (1 at start, +1 per successful reload).",
		}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "claimsmith_config_last_reload_success_timestamp_seconds",
			Help: "Unix time the serving pipeline was built (start or last successful reload).",
		}),
		replayIDs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "claimsmith_webhook_replay_ids",
			Help: "Signed webhook ids remembered against replay (within the tolerance window), by verifier.",
		}, []string{"verifier"}),
		replayCap: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "claimsmith_webhook_replay_capacity",
			Help: "Bound of the webhook replay cache by verifier (hooks.replay_rate × 2 × tolerance); at it, signed logins get 503.",
		}, []string{"verifier"}),
		replayRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "claimsmith_webhook_replay_refusals_total",
			Help: "Signed requests refused by the replay check, by verifier and reason: replay (the message was already received, 401) or unavailable (the replay store could not answer: Redis down or hung, or the in-process cache full; 503/504).",
		}, []string{"verifier", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.replayIDs, m.replayCap, m.replayRefusals, m.requests, m.latency, m.ruleDur, m.ruleErrs, m.decisions, m.storeErrs, m.reloads, m.generation, m.lastReload} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.allowed = m.decisions.WithLabelValues("allowed", "")
	m.runFailed = m.decisions.WithLabelValues("error", "")
	m.deniedCodes = map[string]prometheus.Counter{}
	for _, code := range []string{runtime.CodeAccessDenied, runtime.CodeUnauthorized} {
		m.deniedCodes[code] = m.decisions.WithLabelValues("denied", code)
	}
	m.reloadOK = m.reloads.WithLabelValues("ok")
	m.reloadBad = m.reloads.WithLabelValues("rejected")
	m.writers.New = func() any { return new(statusWriter) }
	return m, nil
}

// ReplayGauges are the fill and capacity gauges of one webhook verifier's
// replay cache.
func (m *Metrics) ReplayGauges(verifier string) (ids, capacity prometheus.Gauge) {
	return m.replayIDs.WithLabelValues(verifier), m.replayCap.WithLabelValues(verifier)
}

// ReplayRefusals are the counters of one verifier's requests refused as a
// replay and refused because the replay store could not answer.
func (m *Metrics) ReplayRefusals(verifier string) (replayed, unavailable prometheus.Counter) {
	return m.replayRefusals.WithLabelValues(verifier, "replay"), m.replayRefusals.WithLabelValues(verifier, "unavailable")
}

// MetricsRoute serves g (the registry the collectors are on) at GET /metrics.
func MetricsRoute(g prometheus.Gatherer) Route {
	return Route{Pattern: PatternMetrics, Handler: promhttp.HandlerFor(g, promhttp.HandlerOpts{}), Label: LabelOps}
}

// StoreErrors returns the counter of store errors for op, resolved once by
// the caller (e.g. a store decorator) so the login path does no lookup.
func (m *Metrics) StoreErrors(op string) prometheus.Counter { return m.storeErrs.WithLabelValues(op) }

// reloaded records a reload attempt; gen is the generation now serving.
func (m *Metrics) reloaded(ok bool, gen uint64, at time.Time) {
	if m == nil {
		return
	}
	if !ok {
		m.reloadBad.Inc()
		return
	}
	if gen > 1 {
		m.reloadOK.Inc()
	}
	m.generation.Set(float64(gen))
	m.lastReload.Set(float64(at.UnixNano()) / 1e9)
}

// Instrument wraps every route's handler with the request counter and the
// latency histogram of its pattern and label (nil handlers stay nil).
func (m *Metrics) Instrument(routes []Route) []Route {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		out[i] = rt
		if rt.Handler != nil {
			out[i].Handler = m.instrument(rt)
		}
	}
	return out
}

// commonStatuses are the statuses whose series each route resolves once,
// at its first such answer; others are looked up every time.
var commonStatuses = [...]int{200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503}

// resolved holds a series resolved on first use. Series are created lazily
// so /metrics lists what happened, not every route × status at zero.
type resolved[T any] struct{ p atomic.Pointer[T] }

func (r *resolved[T]) get(create func() T) T {
	if v := r.p.Load(); v != nil {
		return *v
	}
	// Two racing first requests resolve the same child series.
	v := create()
	r.p.Store(&v)
	return v
}

type instrumented struct {
	h              http.Handler
	route, dialect string
	m              *Metrics
	latency        resolved[prometheus.Observer]
	byStatus       [len(commonStatuses)]resolved[prometheus.Counter]
}

func (m *Metrics) instrument(rt Route) http.Handler {
	label := rt.Label
	if label == "" {
		label = "other"
	}
	return &instrumented{h: rt.Handler, route: rt.Pattern, dialect: label, m: m}
}

func (in *instrumented) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	sw := in.m.writers.Get().(*statusWriter)
	sw.ResponseWriter, sw.status = w, 0
	defer func() {
		st := sw.status
		if st == 0 {
			st = http.StatusOK // nothing written: net/http sends 200
		}
		sw.ResponseWriter = nil
		in.m.writers.Put(sw)
		in.latency.get(in.newLatency).Observe(time.Since(t0).Seconds())
		in.count(st)
	}()
	in.h.ServeHTTP(sw, r)
}

func (in *instrumented) newLatency() prometheus.Observer {
	return in.m.latency.WithLabelValues(in.route, in.dialect)
}

func (in *instrumented) count(status int) {
	for i, st := range commonStatuses {
		if st == status {
			in.byStatus[i].get(func() prometheus.Counter {
				return in.m.requests.WithLabelValues(in.route, in.dialect, strconv.Itoa(status))
			}).Inc()
			return
		}
	}
	in.m.requests.WithLabelValues(in.route, in.dialect, strconv.Itoa(status)).Inc()
}

// statusWriter records the status a handler sends. Unwrap lets
// http.ResponseController reach the connection (flush, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// StepLister is a pipeline that names its configured steps
// (*runtime.Pipeline).
type StepLister interface {
	runtime.Enricher
	Steps() []runtime.StepInfo
}

// Enricher wraps a pipeline so each run feeds the rule and decision
// metrics. The per-step observers are resolved here, once per pipeline
// (a reload builds a new pipeline and a new wrapper).
func (m *Metrics) Enricher(p StepLister) runtime.Enricher {
	steps := p.Steps()
	me := &meteredEnricher{p: p, m: m, steps: make([]stepMetrics, len(steps))}
	for i, s := range steps {
		me.steps[i] = stepMetrics{
			name:    s.Name,
			dur:     m.ruleDur.WithLabelValues(s.Name, s.Kind),
			errs:    m.ruleErrs.WithLabelValues(s.Name, "error"),
			panics:  m.ruleErrs.WithLabelValues(s.Name, "panic"),
			timeout: m.ruleErrs.WithLabelValues(s.Name, "timeout"),
		}
	}
	return me
}

type stepMetrics struct {
	name                  string
	dur                   prometheus.Observer
	errs, panics, timeout prometheus.Counter
}

type meteredEnricher struct {
	p     runtime.Enricher
	m     *Metrics
	steps []stepMetrics
}

func (e *meteredEnricher) Run(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
	res, err := e.p.Run(ctx, ev)
	if err != nil {
		e.m.runFailed.Inc()
		return res, err
	}
	// The trace has one entry per step run, in configuration order.
	for i := range res.Trace {
		te := &res.Trace[i]
		if i >= len(e.steps) || te.Rule != e.steps[i].name {
			break
		}
		s := &e.steps[i]
		s.dur.Observe(te.Duration.Seconds())
		if te.Error != "" {
			switch {
			case errors.Is(te.Cause, runtime.ErrTimeout):
				s.timeout.Inc()
			case errors.Is(te.Cause, runtime.ErrPanic):
				s.panics.Inc()
			default:
				s.errs.Inc()
			}
		}
	}
	switch d := res.Decision; {
	case d.Allowed:
		e.m.allowed.Inc()
	default:
		c, ok := e.m.deniedCodes[d.Code]
		if !ok {
			c = e.m.decisions.WithLabelValues("denied", d.Code)
		}
		c.Inc()
	}
	return res, nil
}
