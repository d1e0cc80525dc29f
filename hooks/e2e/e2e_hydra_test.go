package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
)

// The end-to-end test runs a real Ory Hydra v2.3.0 (built once per machine by
// samples/hydra/build.sh, cached outside the repository) against claimsmith's
// Hydra token hook on loopback. `go test -short` skips it.
//
// Failure mode, documented: Hydra treats any hook answer other than 200 with
// a body, 204 or 403 — and a hook it cannot reach — as a server error and
// refuses to issue the token (it retries 5xx answers first). So claimsmith
// being down, restarting, or failing fails the login closed; nothing is
// issued without the enrichment.

var recordPayloads = flag.Bool("record-payloads", false, "write the Hydra hook bodies seen in the e2e test to samples/payloads/hydra/")

const (
	hydraAPIKey   = "e2e-hydra-key-0123456789"
	portalSecret  = "portal-secret-0123456789"
	batchSecret   = "batch-secret-0123456789"
	redirectURI   = "http://127.0.0.1:9/callback"
	hydraReadyMax = 60 * time.Second
)

func TestHydraEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a real Ory Hydra; skipped with -short")
	}
	bin := buildHydra(t)
	ctx := t.Context()

	store := hookstest.NewStore(t, hookstest.PortalClient, hookstest.BatchClient)
	addDocsAPI(t, store)
	enricher := e2eEnricher(t, store)

	// claimsmith's Hydra hook on a fixed loopback port, so it can be stopped
	// and started again at the same address.
	rec, refRec := &hookRecorder{}, &hookRecorder{}
	var fail atomic.Bool
	hydraHook := &login.Handler{
		Run: enricher, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Dialect: &login.Hydra{Header: "Authorization", Keys: hooks.NewKeySet(hydraAPIKey), Connection: "hydra", Namespace: hookstest.NS},
	}
	mux := http.NewServeMux()
	mux.Handle(login.PatternHydraToken, rec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "injected failure", http.StatusInternalServerError)
			return
		}
		hydraHook.ServeHTTP(w, r)
	})))
	mux.Handle(login.PatternHydraRefresh, refRec.wrap(hydraHook))
	cs := startClaimsmith(t, "127.0.0.1:0", mux)
	hookAddr := cs.addr

	publicPort, adminPort := freePort(t), freePort(t)
	public := fmt.Sprintf("http://127.0.0.1:%d", publicPort)
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	cfg := hydraConfig(t, publicPort, adminPort, "http://"+hookAddr)
	startHydra(t, ctx, bin, cfg, admin)

	createClient(t, admin, map[string]any{
		"client_id": hookstest.PortalClient, "client_secret": portalSecret,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid offline email", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "client_secret_basic", "audience": []string{docsAPI},
	})
	createClient(t, admin, map[string]any{
		"client_id": hookstest.BatchClient, "client_secret": batchSecret,
		"grant_types": []string{"client_credentials"}, "scope": "reports",
		"token_endpoint_auth_method": "client_secret_basic",
	})

	t.Run("client_credentials carries the M2M client's roles", func(t *testing.T) {
		tok := tokenRequest(t, public, hookstest.BatchClient, batchSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
		if tok.status != http.StatusOK {
			t.Fatalf("token request: %d %s", tok.status, tok.raw)
		}
		at := jwtClaims(t, tok.AccessToken)
		ext, _ := at["ext"].(map[string]any)
		if got := ext[hookstest.NS+"roles"]; !reflect.DeepEqual(got, []any{"reports-runner"}) {
			t.Errorf("access token ext roles = %v, want [reports-runner] (claims %v)", got, at)
		}
		if got := ext[hookstest.NS+"permissions"]; !reflect.DeepEqual(got, []any{"reports:run"}) {
			t.Errorf("access token ext permissions = %v, want [reports:run]", got)
		}
		if at["sub"] != hookstest.BatchClient || at["client_id"] != hookstest.BatchClient {
			t.Errorf("sub/client_id = %v/%v, want %s", at["sub"], at["client_id"], hookstest.BatchClient)
		}
		rec.save(t, "client-credentials")
	})

	t.Run("authorization_code for a user in nested groups", func(t *testing.T) {
		code := authorize(t, public, admin, "alice", map[string]any{"email": "alice@example.com"}, map[string]any{"tenant": "acme"})
		tok := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		})
		if tok.status != http.StatusOK {
			t.Fatalf("token request: %d %s", tok.status, tok.raw)
		}
		id := jwtClaims(t, tok.IDToken)
		wantGroups := []any{"Staff", "Engineering", "Backend"}
		// The portal's default_audience (docsAPI) adds the API's role.
		wantRoles := []any{"portal-viewer", "portal-editor", "docs-api-editor"}
		if got := id[hookstest.NS+"groups"]; !reflect.DeepEqual(got, wantGroups) {
			t.Errorf("id token groups = %v, want %v (claims %v)", got, wantGroups, id)
		}
		if got := id[hookstest.NS+"roles"]; !reflect.DeepEqual(got, wantRoles) {
			t.Errorf("id token roles = %v, want %v", got, wantRoles)
		}
		if sid, _ := id["sid"].(string); sid == "" {
			t.Errorf("id token lost Hydra's sid: %v", id)
		}
		if id["email"] != "alice@example.com" {
			t.Errorf("id token lost the consent's email claim: %v", id)
		}
		at := jwtClaims(t, tok.AccessToken)
		ext, _ := at["ext"].(map[string]any)
		if got := ext[hookstest.NS+"permissions"]; !reflect.DeepEqual(got, []any{"docs:read", "docs:write", "docs-api:write"}) {
			t.Errorf("access token ext permissions = %v (claims %v)", got, at)
		}
		if ext["tenant"] != "acme" {
			t.Errorf("access token lost the consent's extra claim tenant: %v", ext)
		}
		prof, err := store.Profile(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		authzMeta, _ := prof.AppMetadata["authorization"].(map[string]any)
		if authzMeta == nil || fmt.Sprint(authzMeta["groups"]) != "[Staff Engineering Backend]" {
			t.Errorf("app_metadata not persisted in claimsmith: %v", prof.AppMetadata)
		}
		rec.save(t, "authorization-code")
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for scope offline")
		}

		// The refresh grant runs the token hook again (and the legacy
		// refresh hook, also pointed at claimsmith): the claims stay.
		ref := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		if ref.status != http.StatusOK {
			t.Fatalf("refresh: %d %s", ref.status, ref.raw)
		}
		rec.save(t, "refresh-token")
		refRec.save(t, "refresh-legacy")
		ext = jwtClaims(t, ref.AccessToken)["ext"].(map[string]any)
		if got := ext[hookstest.NS+"permissions"]; !reflect.DeepEqual(got, []any{"docs:read", "docs:write", "docs-api:write"}) {
			t.Errorf("refreshed access token ext permissions = %v", got)
		}
		if ext["tenant"] != "acme" {
			t.Errorf("refreshed access token lost tenant: %v", ext)
		}
		if refRec.count() == 0 {
			t.Error("the legacy refresh hook was not called")
		}
	})

	t.Run("user mapped through an IdP group", func(t *testing.T) {
		code := authorize(t, public, admin, "carol", map[string]any{"groups": []string{"ad-eng"}}, nil)
		tok := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		})
		if tok.status != http.StatusOK {
			t.Fatalf("token request: %d %s", tok.status, tok.raw)
		}
		id := jwtClaims(t, tok.IDToken)
		if got := id[hookstest.NS+"groups"]; !reflect.DeepEqual(got, []any{"Staff", "Engineering"}) {
			t.Errorf("id token groups = %v, want [Staff Engineering]", got)
		}
	})

	t.Run("user lacking required_roles is denied", func(t *testing.T) {
		code := authorize(t, public, admin, "bob", nil, nil)
		tok := tokenRequest(t, public, hookstest.PortalClient, portalSecret, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		})
		if tok.status == http.StatusOK || tok.Error != "access_denied" {
			t.Fatalf("token request for bob = %d %s, want access_denied", tok.status, tok.raw)
		}
		if tok.AccessToken != "" {
			t.Fatal("a token was issued to a denied user")
		}
		rec.save(t, "denied")
	})

	t.Run("authorization_code token and its refresh carry the same claims", func(t *testing.T) {
		testSameClaimsAtRefresh(t, public, admin)
	})

	t.Run("a Hydra ID token exchanged at claimsmith's token endpoint", func(t *testing.T) {
		testExchangeHydraToken(t, public, admin, enricher)
	})

	t.Run("hook answering 5xx fails closed", func(t *testing.T) {
		fail.Store(true)
		defer fail.Store(false)
		tok := tokenRequest(t, public, hookstest.BatchClient, batchSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
		if tok.status == http.StatusOK || tok.AccessToken != "" {
			t.Fatalf("token issued while the hook failed: %d %s", tok.status, tok.raw)
		}
		t.Logf("hook 5xx → Hydra %d %s", tok.status, tok.Error)
	})

	t.Run("claimsmith down, then restarted", func(t *testing.T) {
		cs.stop(t)
		tok := tokenRequest(t, public, hookstest.BatchClient, batchSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
		if tok.status == http.StatusOK || tok.AccessToken != "" {
			t.Fatalf("token issued while claimsmith was down: %d %s", tok.status, tok.raw)
		}
		t.Logf("claimsmith down → Hydra %d %s", tok.status, tok.Error)
		cs = startClaimsmith(t, hookAddr, mux)
		tok = tokenRequest(t, public, hookstest.BatchClient, batchSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
		if tok.status != http.StatusOK {
			t.Fatalf("after restart: %d %s", tok.status, tok.raw)
		}
	})
}

// buildHydra runs samples/hydra/build.sh, which is a no-op when the cached
// binary is current, and fails the test or benchmark with the reason when
// it cannot.
func buildHydra(t testing.TB) string {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "samples", "hydra", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("building Hydra with %s: %v\n%s", script, err, stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("built Hydra in %s", d.Round(time.Second))
	}
	return strings.TrimSpace(string(out))
}

type claimsmithServer struct {
	addr string
	srv  *http.Server
	done chan struct{}
}

func startClaimsmith(t *testing.T, addr string, h http.Handler) *claimsmithServer {
	t.Helper()
	var ln net.Listener
	var err error
	// A restarted server may briefly find its port in TIME_WAIT reuse limbo.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s := &claimsmithServer{addr: ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *claimsmithServer) stop(t *testing.T) {
	_ = s.srv.Close()
	<-s.done
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// hydraConfig reads samples/hydra/hydra.yml and swaps in this run's ports,
// issuer, hook URL and key.
func hydraConfig(t *testing.T, publicPort, adminPort int, claimsmith string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "samples", "hydra", "hydra.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("samples/hydra/hydra.yml: %v", err)
	}
	set := func(path string, v any) {
		m := cfg
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				t.Fatalf("samples/hydra/hydra.yml: no mapping at %s", path)
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
	set("serve.public.port", publicPort)
	set("serve.admin.port", adminPort)
	set("urls.self.issuer", fmt.Sprintf("http://127.0.0.1:%d/", publicPort))
	set("oauth2.token_hook.url", claimsmith+"/hooks/hydra/token")
	set("oauth2.token_hook.auth.config.value", "Bearer "+hydraAPIKey)
	set("oauth2.refresh_token_hook", map[string]any{
		"url":  claimsmith + "/hooks/hydra/refresh",
		"auth": map[string]any{"type": "api_key", "config": map[string]any{"in": "header", "name": "Authorization", "value": "Bearer " + hydraAPIKey}},
	})
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hydra.yml")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startHydra(t *testing.T, ctx context.Context, bin, cfg, admin string) {
	t.Helper()
	var logs syncBuffer
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "-c", cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "LOG_LEVEL=warn")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting hydra: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("hydra output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(hydraReadyMax)
	for {
		resp, err := http.Get(admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("hydra not ready after %s:\n%s", hydraReadyMax, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func createClient(t *testing.T, admin string, c map[string]any) {
	t.Helper()
	b, _ := json.Marshal(c)
	resp, err := http.Post(admin+"/admin/clients", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating client %v: %d %s", c["client_id"], resp.StatusCode, body)
	}
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
	status       int
	raw          string
}

func tokenRequest(t *testing.T, public, clientID, secret string, form url.Values) tokenResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, public+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tr tokenResponse
	_ = json.Unmarshal(body, &tr)
	tr.status, tr.raw = resp.StatusCode, string(body)
	return tr
}

// authorize runs the authorization-code flow headlessly (REFERENCE.md §3):
// the login and consent are accepted through the admin API with the given
// ID-token and access-token session claims. It returns the code.
func authorize(t *testing.T, public, admin, subject string, idSession, atSession map[string]any) string {
	t.Helper()
	return authorizeAudience(t, public, admin, subject, idSession, atSession, "")
}

// authorizeAudience is authorize asking for (and granting) an access-token
// audience.
func authorizeAudience(t *testing.T, public, admin, subject string, idSession, atSession map[string]any, audience string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{
		"client_id": {hookstest.PortalClient}, "response_type": {"code"}, "scope": {"openid offline email"},
		"redirect_uri": {redirectURI}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
	}
	consent := map[string]any{"grant_scope": []string{"openid", "offline", "email"}}
	if audience != "" {
		q.Set("audience", audience)
		consent["grant_access_token_audience"] = []string{audience}
	}
	loc := follow(t, browser, public+"/oauth2/auth?"+q.Encode())
	challenge := queryParam(t, loc, "login_challenge")
	loc = acceptChallenge(t, admin+"/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(challenge),
		map[string]any{"subject": subject})
	loc = follow(t, browser, loc)
	challenge = queryParam(t, loc, "consent_challenge")
	session := map[string]any{}
	if idSession != nil {
		session["id_token"] = idSession
	}
	if atSession != nil {
		session["access_token"] = atSession
	}
	consent["session"] = session
	loc = acceptChallenge(t, admin+"/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(challenge), consent)
	loc = follow(t, browser, loc)
	for !strings.HasPrefix(loc, redirectURI) {
		loc = follow(t, browser, loc)
	}
	return queryParam(t, loc, "code")
}

// follow GETs u with the browser's cookies and returns the redirect target.
func follow(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || loc == "" {
		t.Fatalf("GET %s: %d, no redirect: %s", u, resp.StatusCode, body)
	}
	next, err := resp.Request.URL.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return next.String()
}

func acceptChallenge(t *testing.T, u string, body map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK || out.RedirectTo == "" {
		t.Fatalf("PUT %s: %d %s", u, resp.StatusCode, raw)
	}
	return out.RedirectTo
}

func queryParam(t *testing.T, u, name string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	v := pu.Query().Get(name)
	if v == "" {
		t.Fatalf("no %s in %s", name, u)
	}
	return v
}

// jwtClaims decodes a JWT's payload (Hydra signed it; the test reads it).
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// hookRecorder keeps the last hook request and response bodies, so the test
// can store what real Hydra sent as samples/payloads (with -record-payloads).
type hookRecorder struct {
	mu        sync.Mutex
	req, resp []byte
	status    int
	calls     int
}

func (r *hookRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func (r *hookRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		cw := &captureWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(cw, req)
		r.mu.Lock()
		r.req, r.resp, r.status = body, cw.buf.Bytes(), cw.status
		r.calls++
		r.mu.Unlock()
	})
}

func (r *hookRecorder) save(t *testing.T, name string) {
	t.Helper()
	if !*recordPayloads {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	dir := filepath.Join("..", "..", "samples", "payloads", "hydra")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, r.req, "", "  "); err != nil {
		t.Fatalf("hook request is not JSON: %v", err)
	}
	pretty.WriteByte('\n')
	if err := os.WriteFile(filepath.Join(dir, name+".request.json"), pretty.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (hook answered %d)", filepath.Join(dir, name+".request.json"), r.status)
}

type captureWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *captureWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *captureWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
