package login_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
)

// TestRefusedRequestsRunNothing: every way a request can fail
// authentication or framing is answered 401/413/415 (400 for a bad body
// behind a good signature) and the pipeline never runs.
func TestRefusedRequestsRunNothing(t *testing.T) {
	native := readPayload(t, "native/post-login.request.json")
	hydra := readPayload(t, "hydra/authorization-code.request.json")
	zitadel := readPayload(t, "zitadel/preaccesstoken.request.json")
	supabase := readPayload(t, "supabase/custom-access-token.request.json")
	policy := readPayload(t, "auth0/policy.request.json")
	big := append([]byte(`{"user":{"user_id":"alice","x":"`), bytes.Repeat([]byte("a"), 70<<10)...)
	big = append(big, `"},"client":{"client_id":"portal"}}`...)

	tamper := func(s signer) signer {
		return func(h http.Header, body []byte) {
			b := append([]byte{}, body...)
			b[len(b)/2] ^= 1
			s(h, b)
		}
	}
	wrongWebhookKey := func(h http.Header, body []byte) {
		h.Set("webhook-id", "msg_x")
		h.Set("webhook-timestamp", fmt.Sprint(t0.Unix()))
		h.Set("webhook-signature", login.SignWebhook([]byte("not-the-key"), "msg_x", t0, body))
	}
	cases := []struct {
		name, path  string
		body        []byte
		sign        signer
		contentType string
		want        int
	}{
		{"native no credentials", "/hooks/v1/post-login", native, nil, "", 401},
		{"native bad signature", "/hooks/v1/post-login", native, tamper(signNative("msg_1", t0)), "", 401},
		{"native wrong secret", "/hooks/v1/post-login", native, wrongWebhookKey, "", 401},
		{"native stale timestamp", "/hooks/v1/post-login", native, signNative("msg_1", t0.Add(-301*time.Second)), "", 401},
		{"native future timestamp", "/hooks/v1/post-login", native, signNative("msg_1", t0.Add(301*time.Second)), "", 401},
		{"native wrong bearer key", "/hooks/v1/post-login", native, header("Authorization", "Bearer nope"), "", 401},
		{"native oversized", "/hooks/v1/post-login", big, header("Authorization", "Bearer "+nativeBearer), "", 413},
		{"native oversized signed", "/hooks/v1/post-login", big, signNative("msg_big", t0), "", 413},
		{"native wrong content type", "/hooks/v1/post-login", native, header("Authorization", "Bearer "+nativeBearer), "text/plain", 415},
		{"native bad JSON behind a good signature", "/hooks/v1/post-login", []byte(`{"user":`), signNative("msg_bad", t0), "", 400},
		{"native missing user_id", "/hooks/v1/post-login", []byte(`{"client":{"client_id":"portal"}}`), header("Authorization", "Bearer "+nativeBearer), "", 400},
		{"hydra no key", "/hooks/hydra/token", hydra, nil, "", 401},
		{"hydra wrong key", "/hooks/hydra/token", hydra, header("Authorization", "Bearer wrong"), "", 401},
		{"hydra oversized", "/hooks/hydra/token", big, header("Authorization", "Bearer "+hydraKey), "", 413},
		{"hydra wrong content type", "/hooks/hydra/token", hydra, header("Authorization", "Bearer "+hydraKey), "application/x-www-form-urlencoded", 415},
		{"hydra no session", "/hooks/hydra/token", []byte(`{"request":{"client_id":"portal"}}`), header("Authorization", "Bearer "+hydraKey), "", 400},
		{"zitadel unsigned", "/hooks/zitadel/preaccesstoken", zitadel, nil, "", 401},
		{"zitadel bad signature", "/hooks/zitadel/preaccesstoken", zitadel, tamper(signZitadel(t0)), "", 401},
		{"zitadel wrong key", "/hooks/zitadel/preaccesstoken", zitadel, header(login.ZitadelSignatureHeader, login.SignZitadel("other", t0, zitadel)), "", 401},
		{"zitadel stale", "/hooks/zitadel/preaccesstoken", zitadel, signZitadel(t0.Add(-301 * time.Second)), "", 401},
		{"zitadel malformed header", "/hooks/zitadel/preaccesstoken", zitadel, header(login.ZitadelSignatureHeader, "v1=zz"), "", 401},
		{"zitadel oversized", "/hooks/zitadel/preaccesstoken", big, signZitadel(t0), "", 413},
		{"zitadel wrong content type", "/hooks/zitadel/preaccesstoken", zitadel, signZitadel(t0), "text/json", 415},
		{"zitadel function mismatch", "/hooks/zitadel/preuserinfo", zitadel, signZitadel(t0), "", 400},
		{"zitadel unknown function", "/hooks/zitadel/presamlresponse", zitadel, signZitadel(t0), "", 404},
		{"supabase unsigned", "/hooks/supabase/custom-access-token", supabase, nil, "", 401},
		{"supabase bad signature", "/hooks/supabase/custom-access-token", supabase, tamper(signSupabase("msg_s", t0, supabaseNew)), "", 401},
		{"supabase wrong secret", "/hooks/supabase/custom-access-token", supabase, wrongWebhookKey, "", 401},
		{"supabase stale", "/hooks/supabase/custom-access-token", supabase, signSupabase("msg_s", t0.Add(-6*time.Minute), supabaseNew), "", 401},
		{"supabase oversized", "/hooks/supabase/custom-access-token", big, signSupabase("msg_s", t0, supabaseNew), "", 413},
		{"supabase wrong content type", "/hooks/supabase/custom-access-token", supabase, signSupabase("msg_s", t0, supabaseNew), "text/plain", 415},
		{"policy no key", "/api/users/carol/policy/portal", policy, nil, "", 401},
		{"policy wrong key", "/api/users/carol/policy/portal", policy, header("x-api-key", "wrong"), "", 401},
		{"policy empty connectionName", "/api/users/carol/policy/portal", []byte(`{"connectionName":"","groups":[]}`), header("x-api-key", extensionKey), "", 400},
		{"policy missing connectionName", "/api/users/carol/policy/portal", []byte(`{"groups":["ad-eng"]}`), header("x-api-key", extensionKey), "", 400},
		{"policy oversized", "/api/users/carol/policy/portal", big, header("x-api-key", extensionKey), "", 413},
		{"policy wrong content type", "/api/users/carol/policy/portal", policy, header("x-api-key", extensionKey), "text/plain", 415},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newDialectServer(t, nil)
			req, _ := http.NewRequest(http.MethodPost, ts.URL+c.path, bytes.NewReader(c.body))
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			if c.sign != nil {
				c.sign(req.Header, c.body)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, body.String())
			}
			if n := ts.enricher.Runs(); n != 0 {
				t.Fatalf("the pipeline ran %d times for a refused request", n)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("error answer has Content-Type %q", ct)
			}
			if !strings.Contains(body.String(), `"error"`) {
				t.Errorf("error answer lacks the stable error shape: %s", body.String())
			}
		})
	}
}

// TestReplayedWebhookRejected: a webhook-id is accepted once within the
// tolerance window; the replay is refused before anything runs.
func TestReplayedWebhookRejected(t *testing.T) {
	for _, c := range []struct{ name, path, payload string }{
		{"native", "/hooks/v1/post-login", "native/post-login.request.json"},
		{"supabase", "/hooks/supabase/custom-access-token", "supabase/custom-access-token.request.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := newDialectServer(t, nil)
			body := readPayload(t, c.payload)
			sign := signNative("msg_replay", t0)
			if c.name == "supabase" {
				sign = signSupabase("msg_replay", t0, supabaseOld)
			}
			if st, b, _ := ts.post(t, c.path, body, sign); st != 200 {
				t.Fatalf("first delivery: %d %s", st, b)
			}
			ts.setNow(t0.Add(4 * time.Minute))
			if st, b, _ := ts.post(t, c.path, body, sign); st != 401 || !strings.Contains(string(b), "replay") {
				t.Fatalf("replay: %d %s, want 401 naming the replay", st, b)
			}
			if n := ts.enricher.Runs(); n != 1 {
				t.Fatalf("pipeline ran %d times, want 1", n)
			}
		})
	}
}

// TestNativeBearerAndSignatureCallers: both ways of authenticating work and
// the answer carries the trace id.
func TestNativeBearerAndSignatureCallers(t *testing.T) {
	ts := newDialectServer(t, nil)
	body := readPayload(t, "native/post-login.request.json")
	st, b, h := ts.post(t, "/hooks/v1/post-login", body, header("Authorization", "Bearer "+nativeBearer))
	if st != 200 || h.Get("X-Claimsmith-Trace-Id") != "txn-post-login-1" {
		t.Fatalf("bearer: %d %s (trace %q)", st, b, h.Get("X-Claimsmith-Trace-Id"))
	}
	// Handlers are idempotent: the same login twice gives the same answer.
	st2, b2, _ := ts.post(t, "/hooks/v1/post-login", body, header("Authorization", "Bearer "+nativeBearer))
	if st2 != 200 || !bytes.Equal(b, b2) {
		t.Fatalf("second run differs:\n%s\n%s", b, b2)
	}
	// "mint": true without a minter configured is a clear 400.
	mint := bytes.Replace(body, []byte(`"trigger": "post-login",`), []byte(`"trigger": "post-login", "mint": true,`), 1)
	st, b, _ = ts.post(t, "/hooks/v1/post-login", mint, header("Authorization", "Bearer "+nativeBearer))
	if st != 400 || !strings.Contains(string(b), "mint") {
		t.Fatalf("mint without minter: %d %s", st, b)
	}
}

// TestPolicyAcceptsImportedExtensionKey: with store_apikey, the apikey of
// the imported extension configuration works as the extension's did.
func TestPolicyAcceptsImportedExtensionKey(t *testing.T) {
	body := readPayload(t, "auth0/policy.request.json")
	plain := newDialectServer(t, nil)
	if st, b, _ := plain.post(t, "/api/users/carol/policy/portal", body, header("x-api-key", "ext-api-key")); st != 401 {
		t.Fatalf("store key without store_apikey: %d %s", st, b)
	}
	ts := newDialectServer(t, func(c *login.Config) { c.Policy = &login.PolicyConfig{StoreAPIKey: true} })
	if st, b, _ := ts.post(t, "/api/users/carol/policy/portal", body, header("x-api-key", "ext-api-key")); st != 200 || !strings.Contains(string(b), `"Engineering"`) {
		t.Fatalf("store key: %d %s", st, b)
	}
	if st, b, _ := ts.post(t, "/api/users/carol/policy/portal", body, header("x-api-key", "ext-api-key-")); st != 401 {
		t.Fatalf("wrong key: %d %s", st, b)
	}
}

// TestRetryAfterServerErrorIsNotAReplay: when claimsmith itself fails (5xx),
// the sender's retry with the same webhook-id is processed, not refused.
func TestRetryAfterServerErrorIsNotAReplay(t *testing.T) {
	store := hookstest.NewStore(t, hookstest.PortalClient, hookstest.BatchClient)
	p := hookstest.NewPipeline(t, store)
	var calls atomic.Int32
	flaky := enricherFunc(func(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
		if calls.Add(1) == 1 {
			return nil, fmt.Errorf("store: %w", runtime.ErrUnavailable)
		}
		return p.Run(ctx, ev)
	})
	v, err := login.NewWebhookVerifier(nativeSecret, login.WebhookOptions{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&login.Handler{Run: flaky,
		Dialect: &login.Native{Trigger: runtime.TriggerPostLogin, Callers: []login.Caller{{Name: "auth0", Webhook: v}}}})
	defer srv.Close()
	body := readPayload(t, "native/post-login.request.json")
	send := func() int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		signNative("msg_retry", t0)(req.Header, body)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send(); st != http.StatusServiceUnavailable {
		t.Fatalf("first attempt: %d, want 503", st)
	}
	if st := send(); st != http.StatusOK {
		t.Fatalf("retry: %d, want 200", st)
	}
	if st := send(); st != http.StatusUnauthorized {
		t.Fatalf("replay after success: %d, want 401", st)
	}
}

// TestOversizedChunkedBody: a body without Content-Length is cut at the
// limit while it is read: 413, nothing run.
func TestOversizedChunkedBody(t *testing.T) {
	ts := newDialectServer(t, nil)
	big := bytes.Repeat([]byte(" "), 70<<10)
	for _, c := range []struct {
		path string
		sign signer
	}{
		{"/hooks/hydra/token", header("Authorization", "Bearer "+hydraKey)},
		{"/hooks/v1/post-login", header("Authorization", "Bearer "+nativeBearer)},
		{"/api/users/carol/policy/portal", header("x-api-key", extensionKey)},
	} {
		// io.MultiReader hides the length, so the request is chunked.
		req, _ := http.NewRequest(http.MethodPost, ts.URL+c.path, io.MultiReader(bytes.NewReader(big), strings.NewReader(`{}`)))
		req.Header.Set("Content-Type", "application/json")
		c.sign(req.Header, nil)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.ContentLength != -1 && req.ContentLength != 0 {
			t.Fatalf("request was not chunked (length %d)", req.ContentLength)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d, want 413", c.path, resp.StatusCode)
		}
	}
	if n := ts.enricher.Runs(); n != 0 {
		t.Fatalf("pipeline ran %d times", n)
	}
}
