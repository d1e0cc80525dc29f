package login_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

// stampRule sets the access-token claim <ns>stamp to its configured value,
// so a login shows which configuration it ran on. Its Cleanup records that
// its pipeline was closed.
type stampRule struct {
	value  string
	closed *atomic.Bool
}

func (r *stampRule) Run(_ context.Context, _ *runtime.Event, out *runtime.Commands) error {
	out.AccessToken.Claims.Set(hookstest.NS+"stamp", r.value)
	return nil
}

func (r *stampRule) Cleanup() error { r.closed.Store(true); return nil }

// gateRule blocks the login of user "slow" until the test releases it: the
// long in-flight login of the reload tests.
type gateRule struct{ entered, release chan struct{} }

func (r *gateRule) Run(ctx context.Context, ev *runtime.Event, _ *runtime.Commands) error {
	if ev.User.UserID != "slow" {
		return nil
	}
	r.entered <- struct{}{}
	select {
	case <-r.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reloadFixture is the "configuration file" of the in-process tests: the
// rule entries the next build reads, and what every build produced.
type reloadFixture struct {
	store   *memory.Store
	metrics *hooks.Metrics
	gate    *gateRule
	replays *login.ReplayCaches

	mu      sync.Mutex
	entries []runtime.RuleEntry
	closed  []*atomic.Bool // per successful build, in order
	block   chan struct{}  // non-nil: the next build waits on it
	started chan struct{}  // signalled when a blocked build started
}

func (f *reloadFixture) set(entries ...runtime.RuleEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = entries
}

func stamp(v string) runtime.RuleEntry {
	return runtime.RuleEntry{Rule: "stamp", Config: map[string]any{"value": v}}
}

// build is what cmd's build function does with the file: a new registry
// (test rules registered through the normal constructor, no global), a new
// pipeline, new dialect handlers.
func (f *reloadFixture) build(ctx context.Context) (*hooks.HookSet, error) {
	f.mu.Lock()
	entries, block, started := f.entries, f.block, f.started
	f.block = nil
	f.mu.Unlock()
	if block != nil {
		started <- struct{}{}
		<-block
	}
	closed := new(atomic.Bool)
	reg := runtime.NewRegistry()
	if err := reg.Register("stamp", func(d runtime.Decoder) (runtime.Rule, error) {
		var c struct {
			Value string `json:"value"`
		}
		if err := d(&c); err != nil {
			return nil, err
		}
		return &stampRule{value: c.Value, closed: closed}, nil
	}); err != nil {
		return nil, err
	}
	if err := reg.Register("gate", func(runtime.Decoder) (runtime.Rule, error) { return f.gate, nil }); err != nil {
		return nil, err
	}
	p, err := runtime.NewPipeline(ctx, runtime.PipelineConfig{Namespace: hookstest.NS, Rules: entries},
		runtime.Deps{Registry: reg, Profiles: f.store})
	if err != nil {
		return nil, err
	}
	hc := &login.Config{Native: &login.NativeConfig{Callers: []login.CallerConfig{
		{Name: "idp", BearerKey: nativeBearer},
		{Name: "signed", WebhookSecret: nativeSecret},
	}}}
	d, err := hc.Build(login.Deps{Enricher: f.metrics.Enricher(p), Namespace: p.Namespace(), Now: time.Now, Replays: f.replays})
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	set := &hooks.HookSet{Handlers: map[string]http.Handler{}, Release: func() { _ = p.Close() }}
	d.Register(func(pattern string, h http.Handler) { set.Handlers[pattern] = h })
	for _, s := range p.Steps() {
		set.Rules = append(set.Rules, s.Name)
	}
	f.mu.Lock()
	f.closed = append(f.closed, closed)
	f.mu.Unlock()
	return set, nil
}

func (f *reloadFixture) isClosed(build int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed[build-1].Load()
}

type reloadServer struct {
	*httptest.Server
	f        *reloadFixture
	reloader *hooks.Reloader
	writeKey string
	readKey  string
}

func newReloadServer(t *testing.T) *reloadServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := hooks.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	f := &reloadFixture{store: hookstest.NewStore(t, hookstest.PortalClient, hookstest.BatchClient), metrics: m, replays: login.NewReplayCaches(m),
		gate: &gateRule{entered: make(chan struct{}, 1), release: make(chan struct{})}}
	f.set(stamp("v1"))
	log := slog.New(slog.DiscardHandler)
	r, err := hooks.NewReloader(t.Context(), login.Routes(), f.build, log, hooks.ReloaderOptions{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := adminfile.OpenKeyStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, writeKey, err := keys.Create(t.Context(), "ops", []string{admin.ScopeWrite})
	if err != nil {
		t.Fatal(err)
	}
	_, readKey, err := keys.Create(t.Context(), "viewer", []string{admin.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	routes := append(r.Routes(),
		(&hooks.ReloadHandler{Reloader: r, Keys: keys, Log: log}).Route(),
		hooks.MetricsRoute(reg))
	mux, err := hooks.NewMux(m.Instrument(routes), []hooks.ReadyCheck{{Name: "rules", Check: r.Check}}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("closing the reloader: %v", err)
		}
	})
	return &reloadServer{Server: srv, f: f, reloader: r, writeKey: writeKey, readKey: readKey}
}

// login posts a native post-login for user and returns the stamp claim.
func (s *reloadServer) login(t *testing.T, user string) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"user":{"user_id":%q},"client":{"client_id":"portal"}}`, user)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/hooks/v1/post-login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+nativeBearer)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	var ans login.NativeResponse
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(b)
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		t.Errorf("login answer: %v: %s", err, b)
	}
	v, _ := ans.AccessTokenClaims.Get(hookstest.NS + "stamp")
	str, _ := v.(string)
	return resp.StatusCode, str
}

func (s *reloadServer) reload(t *testing.T, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/reload", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("reload answer %d: %v: %s", resp.StatusCode, err, b)
	}
	return resp.StatusCode, out
}

func (s *reloadServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := s.Client().Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadSwapsPipeline: a changed configuration serves the next login; a
// broken one is refused with the reason while the old one keeps serving; the
// replaced pipeline is closed.
func TestReloadSwapsPipeline(t *testing.T) {
	s := newReloadServer(t)
	if st, v := s.login(t, "alice"); st != 200 || v != "v1" {
		t.Fatalf("first login: %d %q, want v1", st, v)
	}

	s.f.set(stamp("v2"))
	st, ans := s.reload(t, s.writeKey)
	if st != 200 || ans["generation"] != float64(2) {
		t.Fatalf("reload: %d %v", st, ans)
	}
	if st, v := s.login(t, "alice"); st != 200 || v != "v2" {
		t.Fatalf("login after reload: %d %q, want v2", st, v)
	}
	waitFor(t, "generation 1 closed", func() bool { return s.f.isClosed(1) })

	// Broken: an unknown rule. Refused with the entry named; v2 serves on.
	s.f.set(stamp("v3"), runtime.RuleEntry{Rule: "no-such-rule"})
	st, ans = s.reload(t, s.writeKey)
	if st != http.StatusBadRequest || !strings.Contains(fmt.Sprint(ans["error_description"]), "no-such-rule") ||
		!strings.Contains(fmt.Sprint(ans["error_description"]), "generation 2 keeps serving") {
		t.Fatalf("broken reload: %d %v, want 400 naming the rule", st, ans)
	}
	// A bad setting of a known rule is refused the same way.
	s.f.set(runtime.RuleEntry{Rule: "stamp", Config: map[string]any{"valeu": "typo"}})
	if st, ans = s.reload(t, s.writeKey); st != http.StatusBadRequest || !strings.Contains(fmt.Sprint(ans["error_description"]), "valeu") {
		t.Fatalf("reload with a bad key: %d %v, want 400 naming the key", st, ans)
	}
	if st, v := s.login(t, "alice"); st != 200 || v != "v2" {
		t.Fatalf("login after a rejected reload: %d %q, want v2", st, v)
	}
	if s.reloader.Generation() != 2 || s.f.isClosed(2) {
		t.Fatalf("generation %d, closed %v: a rejected reload must leave generation 2 serving", s.reloader.Generation(), s.f.isClosed(2))
	}

	_, metrics := s.get(t, "/metrics")
	for _, want := range []string{
		`claimsmith_config_reloads_total{result="ok"} 1`,
		`claimsmith_config_reloads_total{result="rejected"} 2`,
		`claimsmith_config_generation 2`,
		`claimsmith_http_requests_total{dialect="native",route="POST /hooks/v1/post-login",status="200"} 3`,
		`claimsmith_http_requests_total{dialect="ops",route="POST /api/reload",status="400"} 2`,
		`claimsmith_login_decisions_total{code="",outcome="allowed"} 3`,
		`claimsmith_rule_duration_seconds_count{kind="stamp",rule="stamp"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestReloadInFlightLoginFinishesOnItsPipeline: a login blocked in a rule
// while the configuration is reloaded answers from the pipeline it started
// on; new logins use the new one at once; the old pipeline is closed only
// after the blocked login ended.
func TestReloadInFlightLoginFinishesOnItsPipeline(t *testing.T) {
	s := newReloadServer(t)
	s.f.set(runtime.RuleEntry{Rule: "gate", Timeout: "2s"}, stamp("old"))
	if st, ans := s.reload(t, s.writeKey); st != 200 {
		t.Fatalf("reload: %d %v", st, ans)
	}
	type result struct {
		status int
		stamp  string
	}
	slow := make(chan result, 1)
	go func() {
		st, v := s.login(t, "slow")
		slow <- result{st, v}
	}()
	select {
	case <-s.f.gate.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow login never reached the gate")
	}

	s.f.set(stamp("new"))
	if st, ans := s.reload(t, s.writeKey); st != 200 || ans["generation"] != float64(3) {
		t.Fatalf("reload during the slow login: %d %v", st, ans)
	}
	if st, v := s.login(t, "alice"); st != 200 || v != "new" {
		t.Fatalf("login after the reload: %d %q, want new", st, v)
	}
	time.Sleep(50 * time.Millisecond) // give a wrong early close the chance to happen
	if s.f.isClosed(2) {
		t.Fatal("generation 2 was closed while a login was still running on it")
	}
	close(s.f.gate.release)
	r := <-slow
	if r.status != 200 || r.stamp != "old" {
		t.Fatalf("slow login: %d %q, want 200 on the old pipeline", r.status, r.stamp)
	}
	waitFor(t, "generation 2 closed after its last login", func() bool { return s.f.isClosed(2) })
	if s.f.isClosed(3) {
		t.Fatal("the serving generation was closed")
	}
}

// TestReloadKeepsReplayProtection: a webhook-id received before a reload
// is still refused as a replay after it (the rebuilt verifier shares the
// replay cache).
func TestReloadKeepsReplayProtection(t *testing.T) {
	s := newReloadServer(t)
	body := []byte(`{"user":{"user_id":"alice"},"client":{"client_id":"portal"}}`)
	at := time.Now()
	send := func() int {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/hooks/v1/post-login", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", "msg_reload_1")
		req.Header.Set("webhook-timestamp", fmt.Sprint(at.Unix()))
		req.Header.Set("webhook-signature", login.SignWebhook(nativeKey, "msg_reload_1", at, body))
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send(); st != http.StatusOK {
		t.Fatalf("first delivery: %d", st)
	}
	s.f.set(stamp("v2"))
	if st, ans := s.reload(t, s.writeKey); st != 200 {
		t.Fatalf("reload: %d %v", st, ans)
	}
	if st := send(); st != http.StatusUnauthorized {
		t.Fatalf("replay after a reload: %d, want 401", st)
	}
}

// TestReloadEndpointAuthAndConcurrency: the endpoint needs an admin key
// with write:authz; a reload while another builds is refused with 409.
func TestReloadEndpointAuthAndConcurrency(t *testing.T) {
	s := newReloadServer(t)
	if st, ans := s.reload(t, ""); st != http.StatusUnauthorized {
		t.Errorf("no key: %d %v, want 401", st, ans)
	}
	if st, ans := s.reload(t, "not-a-key"); st != http.StatusUnauthorized {
		t.Errorf("wrong key: %d %v, want 401", st, ans)
	}
	if st, ans := s.reload(t, s.readKey); st != http.StatusForbidden || !strings.Contains(fmt.Sprint(ans["error_description"]), "write:authz") {
		t.Errorf("read-only key: %d %v, want 403 naming write:authz", st, ans)
	}
	if g := s.reloader.Generation(); g != 1 {
		t.Fatalf("refused reloads changed the generation to %d", g)
	}

	block, started := make(chan struct{}), make(chan struct{}, 1)
	s.f.mu.Lock()
	s.f.block, s.f.started = block, started
	s.f.mu.Unlock()
	done := make(chan error, 1)
	go func() { _, err := s.reloader.Reload(context.Background()); done <- err }() // as SIGHUP does
	<-started
	if st, ans := s.reload(t, s.writeKey); st != http.StatusConflict {
		t.Errorf("reload during a reload: %d %v, want 409", st, ans)
	}
	close(block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g := s.reloader.Generation(); g != 2 {
		t.Fatalf("generation %d after the blocked reload, want 2", g)
	}
}
