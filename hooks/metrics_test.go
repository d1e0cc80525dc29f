package hooks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/hooks/oauth"
	"github.com/claimsmith/claimsmith/runtime"
)

// ruleFunc adapts a function to runtime.Rule.
type ruleFunc func(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error

func (f ruleFunc) Run(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error {
	return f(ctx, ev, out)
}

// TestRuleAndDecisionMetrics runs a real pipeline whose rules fail in each
// way (error, panic, timeout; all on_error: skip) and one that denies some
// users, and reads the counters back from the registry.
func TestRuleAndDecisionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := hooks.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rr := runtime.NewRegistry()
	for id, f := range map[string]ruleFunc{
		"fails":  func(context.Context, *runtime.Event, *runtime.Commands) error { return errors.New("boom") },
		"panics": func(context.Context, *runtime.Event, *runtime.Commands) error { panic("oops") },
		"slow": func(ctx context.Context, _ *runtime.Event, _ *runtime.Commands) error {
			<-ctx.Done()
			return ctx.Err()
		},
		"gatekeeper": func(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
			switch ev.User.UserID {
			case "mallory":
				out.Deny("not you", runtime.CodeUnauthorized)
			case "eve":
				out.Deny("nope", "custom_code") // not an OAuth code: a rule error, denied

			}
			return nil
		},
	} {
		if err := rr.Register(id, func(runtime.Decoder) (runtime.Rule, error) { return f, nil }); err != nil {
			t.Fatal(err)
		}
	}
	p, err := runtime.NewPipeline(t.Context(), runtime.PipelineConfig{Namespace: "https://claimsmith.test/", Rules: []runtime.RuleEntry{
		{Rule: "fails", OnError: "skip"},
		{Rule: "panics", OnError: "skip"},
		{Rule: "slow", OnError: "skip", Timeout: "5ms"},
		{Name: "gate", Rule: "gatekeeper"},
	}}, runtime.Deps{Registry: rr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	e := m.Enricher(p)
	for _, u := range []string{"alice", "bob", "mallory", "eve"} {
		if _, err := e.Run(t.Context(), &runtime.Event{User: runtime.User{UserID: u}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := e.Run(ctx, &runtime.Event{User: runtime.User{UserID: "gone"}}); err == nil {
		t.Fatal("a run with an ended context succeeded")
	}

	want := map[string]float64{
		`claimsmith_rule_errors_total{cause="error",rule="fails"}`:                    4,
		`claimsmith_rule_errors_total{cause="panic",rule="panics"}`:                   4,
		`claimsmith_rule_errors_total{cause="timeout",rule="slow"}`:                   4,
		`claimsmith_rule_errors_total{cause="error",rule="gate"}`:                     1,
		`claimsmith_login_decisions_total{code="",outcome="allowed"}`:                 2,
		`claimsmith_login_decisions_total{code="unauthorized",outcome="denied"}`:      1,
		`claimsmith_login_decisions_total{code="custom_code",outcome="denied"}`:       -1,
		`claimsmith_login_decisions_total{code="",outcome="error"}`:                   1,
		`claimsmith_rule_duration_seconds_count{kind="gatekeeper",rule="gate"}`:       4,
		`claimsmith_rule_duration_seconds_count{kind="slow",rule="slow"}`:             4,
		`claimsmith_login_decisions_total{code="access_denied",outcome="denied"}`:     1,
		`claimsmith_rule_errors_total{cause="timeout",rule="fails"}`:                  0,
		`claimsmith_rule_errors_total{cause="error",rule="panics"}`:                   0,
		`claimsmith_rule_duration_seconds_count{kind="panics",rule="panics"}`:         4,
		`claimsmith_rule_duration_seconds_count{kind="fails",rule="fails"}`:           4,
		`claimsmith_login_decisions_total{code="unauthorized",outcome="allowed"}`:     -1, // absent
		`claimsmith_rule_errors_total{cause="panic",rule="gate"}`:                     0,
		`claimsmith_rule_errors_total{cause="timeout",rule="gate"}`:                   0,
		`claimsmith_rule_errors_total{cause="error",rule="slow"}`:                     0,
		`claimsmith_rule_errors_total{cause="panic",rule="fails"}`:                    0,
		`claimsmith_rule_errors_total{cause="timeout",rule="panics"}`:                 0,
		`claimsmith_rule_errors_total{cause="panic",rule="slow"}`:                     0,
		`claimsmith_login_decisions_total{code="custom_code",outcome="allowed"}`:      -1,
		`claimsmith_rule_duration_seconds_count{kind="gatekeeper",rule="gatekeeper"}`: -1,
	}
	got := scrape(t, reg)
	for series, v := range want {
		have, ok := got[series]
		switch {
		case v < 0 && ok:
			t.Errorf("%s = %v, want no such series", series, have)
		case v >= 0 && (!ok || have != v):
			t.Errorf("%s = %v (present %v), want %v", series, have, ok, v)
		}
	}
}

// scrape gathers reg into "name{labels}" → value (counters, gauges,
// histogram counts).
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, lp := range mt.GetLabel() {
				labels = append(labels, lp.GetName()+`="`+lp.GetValue()+`"`)
			}
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case mt.Counter != nil:
				out[mf.GetName()+key] = mt.Counter.GetValue()
			case mt.Gauge != nil:
				out[mf.GetName()+key] = mt.Gauge.GetValue()
			case mt.Histogram != nil:
				out[mf.GetName()+"_count"+key] = float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// TestHTTPMetrics: every route counts its requests by status (common and
// uncommon ones, and the implicit 200 of a handler that writes nothing) and
// observes its latency; the dialect label follows the route.
func TestHTTPMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := hooks.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	routes := m.Instrument([]hooks.Route{
		{Pattern: login.PatternZitadel, Label: "zitadel", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.PathValue("function") {
			case "teapot":
				w.WriteHeader(http.StatusTeapot)
			case "deny":
				hooks.WriteError(w, runtime.ErrForbidden)
			}
			// otherwise nothing written: 200
		})},
		{Pattern: "GET /.well-known/jwks.json", Handler: nil},
		{Pattern: login.PatternSupabase, Label: "supabase", Handler: http.NotFoundHandler()}, // never called
		{Pattern: "GET /unlabelled", Handler: http.NotFoundHandler()},
	})
	if routes[1].Handler != nil {
		t.Fatal("a nil handler was instrumented into a non-nil one")
	}
	mux, err := hooks.NewMux(append(routes, hooks.MetricsRoute(reg)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"preaccesstoken", "preuserinfo", "teapot", "deny", "deny"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/hooks/zitadel/"+fn, nil))
	}
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/unlabelled", nil))
	got := scrape(t, reg)
	for series, v := range map[string]float64{
		`claimsmith_http_requests_total{dialect="zitadel",route="POST /hooks/zitadel/{function}",status="200"}`:    2,
		`claimsmith_http_requests_total{dialect="zitadel",route="POST /hooks/zitadel/{function}",status="418"}`:    1,
		`claimsmith_http_requests_total{dialect="zitadel",route="POST /hooks/zitadel/{function}",status="403"}`:    2,
		`claimsmith_http_request_duration_seconds_count{dialect="zitadel",route="POST /hooks/zitadel/{function}"}`: 5,
		`claimsmith_http_requests_total{dialect="other",route="GET /unlabelled",status="404"}`:                     1,
	} {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	for series := range got {
		if strings.Contains(series, "supabase") {
			t.Errorf("a route never called exports %s: series are created on first use", series)
		}
	}
	// The exposition endpoint serves the text format.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "# TYPE claimsmith_http_requests_total counter") {
		t.Errorf("/metrics: %d %.200s", w.Code, w.Body)
	}
	if _, ok := got["claimsmith_config_generation{}"]; !ok {
		t.Error("claimsmith_config_generation is not exported")
	}
}

// TestRouteLabels: the metrics label of a route is the one its package
// declares: each dialect's name on its routes, oauth and discovery on the
// OAuth/OIDC endpoints, ops on /metrics and /api/reload; WithLabel fills
// only missing labels.
func TestRouteLabels(t *testing.T) {
	want := map[string]string{
		login.PatternPostLogin:           "native",
		login.PatternCredentialsExchange: "native",
		login.PatternHydraToken:          "hydra",
		login.PatternHydraRefresh:        "hydra",
		login.PatternZitadel:             "zitadel",
		login.PatternSupabase:            "supabase",
		login.PatternPolicy:              "auth0",
		oauth.PatternIntrospect:          "oauth",
		oauth.PatternRevoke:              "oauth",
		oauth.PatternJWKS:                "discovery",
		oauth.PatternDiscovery:           "discovery",
		hooks.PatternReload:              "ops",
		hooks.PatternMetrics:             "ops",
	}
	routes := append(login.Routes(), oauth.Endpoints{}.Routes()...)
	routes = append(routes, (&hooks.ReloadHandler{}).Route(), hooks.MetricsRoute(prometheus.NewRegistry()))
	seen := map[string]bool{}
	for _, rt := range routes {
		seen[rt.Pattern] = true
		if rt.Label != want[rt.Pattern] {
			t.Errorf("%s: label %q, want %q", rt.Pattern, rt.Label, want[rt.Pattern])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("routes %v, want the patterns of %v", seen, want)
	}
	got := hooks.WithLabel("admin", hooks.Route{Pattern: "/api/"}, hooks.Route{Pattern: hooks.PatternReload, Label: "ops"})
	if got[0].Label != "admin" || got[1].Label != "ops" {
		t.Errorf("WithLabel: %+v", got)
	}
}

// TestNewMetricsTwiceOnOneRegistry: collectors are registered, so a second
// set on the same registry is an error rather than silently split series.
func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := hooks.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := hooks.NewMetrics(reg); err == nil {
		t.Fatal("second registration succeeded")
	}
	if _, err := hooks.NewMetrics(nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("nil registerer: %v", err)
	}
}

// fixedEnricher answers every run with the same three-rule result.
type fixedEnricher struct{ res runtime.Result }

func (f *fixedEnricher) Run(context.Context, *runtime.Event) (*runtime.Result, error) {
	return &f.res, nil // read only: callers here never change it
}

func (f *fixedEnricher) Steps() []runtime.StepInfo {
	out := make([]runtime.StepInfo, len(f.res.Trace))
	for i, te := range f.res.Trace {
		out[i] = runtime.StepInfo{Name: te.Rule, Kind: te.Kind}
	}
	return out
}

// BenchmarkMetricsOverhead is what serve's instrumentation adds to one
// login: the request wrapper (status, latency) and the per-rule and
// decision observations of a three-rule run, without the login itself.
func BenchmarkMetricsOverhead(b *testing.B) {
	m, err := hooks.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	fe := &fixedEnricher{res: runtime.Result{Decision: runtime.Decision{Allowed: true}, Trace: []runtime.TraceEntry{
		{Rule: "authorization", Kind: "authorization", Duration: 20 * time.Microsecond},
		{Rule: "required-roles", Kind: "required-roles", Duration: time.Microsecond},
		{Rule: "copy-metadata-claims", Kind: "copy-metadata-claims", Duration: time.Microsecond},
	}}}
	e := m.Enricher(fe)
	h := m.Instrument([]hooks.Route{{Pattern: login.PatternPostLogin, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := e.Run(r.Context(), nil); err != nil {
			b.Fatal(err)
		}
		w.WriteHeader(http.StatusOK)
	})}})[0].Handler
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := fe.Run(r.Context(), nil); err != nil {
			b.Fatal(err)
		}
		w.WriteHeader(http.StatusOK)
	})
	req := httptest.NewRequest(http.MethodPost, "/hooks/v1/post-login", nil)
	w := &discardWriter{h: http.Header{}}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"instrumented", h}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
