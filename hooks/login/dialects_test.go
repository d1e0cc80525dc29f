package login_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

var update = flag.Bool("update", false, "rewrite the golden responses in samples/payloads")

// The fixed clock of the dialect tests and the secrets their callers hold.
var (
	t0             = time.Date(2026, 11, 23, 17, 0, 0, 0, time.UTC)
	nativeKey      = []byte("native-webhook-key-0123456789")
	nativeSecret   = "whsec_" + base64.StdEncoding.EncodeToString(nativeKey)
	nativeBearer   = "native-bearer-key-0123456789"
	supabaseOld    = []byte("supabase-old-key-0123456789")
	supabaseNew    = []byte("supabase-new-key-0123456789")
	supabaseSecret = "v1,whsec_" + base64.StdEncoding.EncodeToString(supabaseOld) + "|v1,whsec_" + base64.StdEncoding.EncodeToString(supabaseNew)
	hydraKey       = "hydra-api-key-0123456789"
	zitadelKey     = "zitadel-signing-key-0123456789"
	extensionKey   = "ext-api-key-0123456789"
)

// testServer serves every dialect, built from a HooksConfig as cmd does, on
// real loopback HTTP, with a fixed clock.
type testServer struct {
	*httptest.Server
	enricher *hookstest.Recorder
	store    *memory.Store
	clock    atomic.Int64 // unix nanoseconds; the handlers read it concurrently
}

func (ts *testServer) setNow(t time.Time) { ts.clock.Store(t.UnixNano()) }
func (ts *testServer) now() time.Time     { return time.Unix(0, ts.clock.Load()) }

func newDialectServer(t *testing.T, cfgMod func(*login.Config)) *testServer {
	t.Helper()
	return newMintingServer(t, cfgMod, nil)
}

// newMintingServer is newDialectServer with a token minter for the native
// triggers.
func newMintingServer(t *testing.T, cfgMod func(*login.Config), minter login.Minter) *testServer {
	t.Helper()
	return newServerFull(t, cfgMod, minter, nil)
}

// newDialectServerWith is newDialectServer keeping its webhook replay
// caches in replays.
func newDialectServerWith(t *testing.T, cfgMod func(*login.Config), replays *login.ReplayCaches) *testServer {
	t.Helper()
	return newServerFull(t, cfgMod, nil, replays)
}

func newServerFull(t *testing.T, cfgMod func(*login.Config), minter login.Minter, replays *login.ReplayCaches) *testServer {
	t.Helper()
	return newServerDeps(t, cfgMod, func(d *login.Deps) { d.Minter, d.Replays = minter, replays })
}

// newServerDeps is newDialectServer with the dialects' dependencies
// adjusted by depsMod.
func newServerDeps(t *testing.T, cfgMod func(*login.Config), depsMod func(*login.Deps)) *testServer {
	t.Helper()
	store := hookstest.NewStore(t, hookstest.PortalClient, hookstest.BatchClient)
	ts := &testServer{enricher: &hookstest.Recorder{Next: hookstest.NewPipeline(t, store)}, store: store}
	ts.setNow(t0)
	cfg := &login.Config{
		MaxBody: 64 << 10,
		Native: &login.NativeConfig{Callers: []login.CallerConfig{
			{Name: "auth0", WebhookSecret: nativeSecret},
			{Name: "custom-idp", BearerKey: nativeBearer},
		}},
		Hydra:    &login.HydraConfig{APIKeyEnv: "HYDRA_KEY"},
		Zitadel:  &login.ZitadelConfig{SigningKey: zitadelKey},
		Supabase: &login.SupabaseConfig{SecretEnv: "SUPABASE_SECRET", ClientID: hookstest.PortalClient},
		Policy:   &login.PolicyConfig{APIKey: extensionKey},
	}
	if cfgMod != nil {
		cfgMod(cfg)
	}
	env := map[string]string{"HYDRA_KEY": hydraKey, "SUPABASE_SECRET": supabaseSecret}
	deps := login.Deps{
		Enricher: ts.enricher, Resolver: store, Settings: store, Namespace: hookstest.NS,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: ts.now, Getenv: func(k string) string { return env[k] },
	}
	if depsMod != nil {
		depsMod(&deps)
	}
	d, err := cfg.Build(deps)
	if err != nil {
		t.Fatalf("building dialects: %v", err)
	}
	mux := http.NewServeMux()
	d.Register(mux.Handle)
	ts.Server = httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

type signer func(h http.Header, body []byte)

func signNative(id string, at time.Time) signer {
	return func(h http.Header, body []byte) {
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", fmt.Sprint(at.Unix()))
		h.Set("webhook-signature", login.SignWebhook(nativeKey, id, at, body))
	}
}

func signSupabase(id string, at time.Time, key []byte) signer {
	return func(h http.Header, body []byte) {
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", fmt.Sprint(at.Unix()))
		h.Set("webhook-signature", login.SignWebhook(key, id, at, body))
	}
}

func signZitadel(at time.Time) signer {
	return func(h http.Header, body []byte) {
		h.Set(login.ZitadelSignatureHeader, login.SignZitadel(zitadelKey, at, body))
	}
}

func header(name, value string) signer {
	return func(h http.Header, _ []byte) { h.Set(name, value) }
}

func (ts *testServer) post(t *testing.T, path string, body []byte, sign signer) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sign != nil {
		sign(req.Header, body)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Header
}

func readPayload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "samples", "payloads", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden is a recorded answer: status and JSON body.
type golden struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

func checkGolden(t *testing.T, name string, status int, body []byte) {
	t.Helper()
	got := golden{Status: status}
	if len(bytes.TrimSpace(body)) > 0 {
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "  ", "  "); err != nil {
			t.Fatalf("%s: answer is not JSON: %v: %s", name, err, body)
		}
		got.Body = buf.Bytes()
	}
	enc, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	enc = append(enc, '\n')
	path := filepath.Join("..", "..", "samples", "payloads", name)
	if *update {
		if err := os.WriteFile(path, enc, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./hooks -run Golden -update)", err)
	}
	if !bytes.Equal(want, enc) {
		t.Errorf("%s differs from the golden answer\n--- got\n%s\n--- want\n%s", name, enc, want)
	}
}

// TestDialectGolden sends each recorded real-format request of
// samples/payloads through real HTTP and compares the answer with the golden
// response beside it.
func TestDialectGolden(t *testing.T) {
	cases := []struct {
		name, path string
		sign       signer
		status     int
	}{
		{"hydra/client-credentials", "/hooks/hydra/token", header("Authorization", "Bearer "+hydraKey), 200},
		{"hydra/authorization-code", "/hooks/hydra/token", header("Authorization", "Bearer "+hydraKey), 200},
		{"hydra/refresh-token", "/hooks/hydra/token", header("Authorization", hydraKey), 200},
		{"hydra/refresh-legacy", "/hooks/hydra/refresh", header("Authorization", "Bearer "+hydraKey), 200},
		{"hydra/denied", "/hooks/hydra/token", header("Authorization", "Bearer "+hydraKey), 403},
		{"zitadel/preaccesstoken", "/hooks/zitadel/preaccesstoken", signZitadel(t0), 200},
		{"zitadel/preuserinfo", "/hooks/zitadel/preuserinfo", signZitadel(t0.Add(-299 * time.Second)), 200},
		{"zitadel/denied", "/hooks/zitadel/preaccesstoken", signZitadel(t0), 200},
		{"supabase/custom-access-token", "/hooks/supabase/custom-access-token", signSupabase("msg_2pCustomToken", t0, supabaseNew), 200},
		{"supabase/denied", "/hooks/supabase/custom-access-token", signSupabase("msg_2pDenied", t0.Add(4*time.Minute), supabaseOld), 200},
		{"native/post-login", "/hooks/v1/post-login", signNative("msg_post_login_1", t0), 200},
		{"native/denied", "/hooks/v1/post-login", header("Authorization", "Bearer "+nativeBearer), 200},
		{"native/credentials-exchange", "/hooks/v1/credentials-exchange", signNative("msg_m2m_1", t0.Add(-4*time.Minute)), 200},
		{"auth0/policy", "/api/users/carol/policy/portal", header("x-api-key", extensionKey), 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newDialectServer(t, nil)
			status, body, _ := ts.post(t, c.path, readPayload(t, c.name+".request.json"), c.sign)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			checkGolden(t, c.name+".response.json", status, body)
		})
	}
}

// TestDialectMapping checks what each dialect hands to the pipeline.
func TestDialectMapping(t *testing.T) {
	ts := newDialectServer(t, nil)
	post := func(name, path string, sign signer) runtime.Event {
		t.Helper()
		if st, body, _ := ts.post(t, path, readPayload(t, name+".request.json"), sign); st >= 300 && st != 403 {
			t.Fatalf("%s: %d %s", name, st, body)
		}
		return ts.enricher.Last()
	}
	hk := header("Authorization", "Bearer "+hydraKey)

	ev := post("hydra/authorization-code", "/hooks/hydra/token", hk)
	if ev.Trigger != runtime.TriggerPostLogin || ev.User.UserID != "alice" || ev.Client.ClientID != hookstest.PortalClient ||
		ev.Transaction.GrantType != "authorization_code" || strings.Join(ev.Transaction.RequestedScopes, " ") != "openid offline email" ||
		ev.User.Email != "alice@example.com" || ev.Connection.Name != "hydra" || ev.Transaction.Nonce != "nonce-0123456789" {
		t.Errorf("hydra authorization_code event = %+v", ev)
	}
	ev = post("hydra/client-credentials", "/hooks/hydra/token", hk)
	if ev.Trigger != runtime.TriggerCredentialsExchange || ev.User.UserID != hookstest.BatchClient || ev.Transaction.GrantType != "client_credentials" ||
		strings.Join(ev.Transaction.RequestedScopes, " ") != "reports" {
		t.Errorf("hydra client_credentials event = %+v", ev)
	}
	ev = post("hydra/refresh-legacy", "/hooks/hydra/refresh", hk)
	if ev.User.UserID != "alice" || ev.Client.ClientID != hookstest.PortalClient || ev.Transaction.GrantType != "refresh_token" {
		t.Errorf("hydra legacy refresh event = %+v", ev)
	}
	ev = post("zitadel/preaccesstoken", "/hooks/zitadel/preaccesstoken", signZitadel(t0))
	if ev.User.UserID != "312909075211944344" || ev.User.Email != "alice@example.com" || !ev.User.EmailVerified ||
		ev.User.Name != "Alice Example" || ev.Client.ClientID != hookstest.PortalClient || ev.Connection.Name != "zitadel" ||
		ev.Connection.ID != "312909075211879832" || strings.Join(ev.User.Groups, ",") != "portal-engineer" ||
		ev.User.AppMetadata["cost_center"] != "CC-42" {
		t.Errorf("zitadel event = %+v", ev)
	}
	ev = post("supabase/custom-access-token", "/hooks/supabase/custom-access-token", signSupabase("msg_map", t0, supabaseNew))
	if ev.User.UserID != hookstest.SupabaseDana || ev.User.Email != "dana@example.com" || ev.Connection.Name != "email" ||
		ev.Client.ClientID != hookstest.PortalClient || ev.User.Name != "Dana Example" || ev.Transaction.ID != "msg_map" {
		t.Errorf("supabase event = %+v", ev)
	}
	ev = post("native/credentials-exchange", "/hooks/v1/credentials-exchange", signNative("msg_map", t0))
	if ev.Trigger != runtime.TriggerCredentialsExchange || ev.User.UserID != hookstest.BatchClient || ev.Transaction.Audience != "https://api.example.com/" {
		t.Errorf("native credentials-exchange event = %+v", ev)
	}
}

// TestHydraKeepsSidAndIncomingClaims: Hydra replaces the extra claims with
// ours, so the incoming ones (sid above all) must come back.
func TestHydraKeepsSidAndIncomingClaims(t *testing.T) {
	ts := newDialectServer(t, nil)
	status, body, _ := ts.post(t, "/hooks/hydra/token", readPayload(t, "hydra/authorization-code.request.json"), header("Authorization", "Bearer "+hydraKey))
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var resp login.HydraHookResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Session.IDToken["sid"] == nil || resp.Session.IDToken["email"] != "alice@example.com" || resp.Session.AccessToken["tenant"] != "acme" {
		t.Errorf("incoming claims lost: %s", body)
	}
}

// TestHydraNothingToAdd: a login the pipeline adds nothing to is a 204,
// never a 200 without a body (Hydra turns that into a 500); claims of an
// earlier run under our namespace are removed on refresh.
func TestHydraNothingToAdd(t *testing.T) {
	empty := enricherFunc(func(context.Context, *runtime.Event) (*runtime.Result, error) {
		return &runtime.Result{Decision: runtime.Decision{Allowed: true}}, nil
	})
	h := &login.Handler{Run: empty, Dialect: &login.Hydra{Keys: hooks.NewKeySet(hydraKey), Namespace: hookstest.NS}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(body string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		req.Header.Set("Authorization", "Bearer "+hydraKey)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	st, body := post(`{"session":{"id_token":{"id_token_claims":{"sub":"dave","ext":{"sid":"s-1"}},"subject":"dave"},"extra":{}},
		"request":{"client_id":"batch-client","requested_scopes":["openid"],"granted_scopes":[],"grant_types":["authorization_code"]}}`)
	if st != http.StatusNoContent || len(body) != 0 {
		t.Errorf("nothing to add: %d %q, want 204 without body", st, body)
	}
	st, body = post(`{"session":{"id_token":{"id_token_claims":{"sub":"dave","ext":{"sid":"s-1"}},"subject":"dave"},
		"extra":{"https://claimsmith.test/roles":["old"],"tenant":"acme"}},
		"request":{"client_id":"batch-client","grant_types":["refresh_token"]}}`)
	if st != http.StatusOK {
		t.Fatalf("stale claims: %d %s", st, body)
	}
	var got login.HydraHookResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Session.AccessToken[hookstest.NS+"roles"]; ok || got.Session.AccessToken["tenant"] != "acme" || got.Session.IDToken["sid"] != "s-1" {
		t.Errorf("stale claims not replaced: %s", body)
	}
}

type enricherFunc func(context.Context, *runtime.Event) (*runtime.Result, error)

func (f enricherFunc) Run(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
	return f(ctx, ev)
}
