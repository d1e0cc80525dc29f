package login_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
)

func webhookHeaders(id string, at time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", fmt.Sprint(at.Unix()))
	h.Set("webhook-signature", sig)
	return h
}

// The example of the Standard Webhooks specification: a known secret, id,
// timestamp and body give a known signature.
func TestWebhookSpecVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	keys, err := login.ParseWebhookSecrets(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(1614265330, 0)
	got := login.SignWebhook(keys[0], "msg_p5jXN8AQM9LWM0D4loKWxJek", at, body)
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	v, err := login.NewWebhookVerifier(secret, login.WebhookOptions{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), webhookHeaders("msg_p5jXN8AQM9LWM0D4loKWxJek", at, got), body); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestParseWebhookSecrets(t *testing.T) {
	a, b := base64.StdEncoding.EncodeToString([]byte("key-a")), base64.StdEncoding.EncodeToString([]byte("key-b"))
	keys, err := login.ParseWebhookSecrets("v1,whsec_" + a + "|whsec_" + b + " | v1,whsec_" + strings.TrimRight(a, "="))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || string(keys[0]) != "key-a" || string(keys[1]) != "key-b" || string(keys[2]) != "key-a" {
		t.Fatalf("keys = %q", keys)
	}
	for _, bad := range []string{"", "whsec_", "secret", "v1,whsec_!!!", "whsec_" + a + "|", "v2,whsec_" + a} {
		_, err := login.ParseWebhookSecrets(bad)
		if !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("ParseWebhookSecrets(%q) = %v, want ErrInvalid", bad, err)
			continue
		}
		if strings.Contains(err.Error(), a) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func TestWebhookVerifier(t *testing.T) {
	now := t0
	secret := "v1,whsec_" + base64.StdEncoding.EncodeToString(supabaseOld) + "|v1,whsec_" + base64.StdEncoding.EncodeToString(supabaseNew)
	v, err := login.NewWebhookVerifier(secret, login.WebhookOptions{Now: func() time.Time { return now }, ReplayCacheSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"user_id":"u"}`)
	sig := func(key []byte, id string, at time.Time) string { return login.SignWebhook(key, id, at, body) }

	// Several entries, one valid; entries of another version are skipped.
	h := webhookHeaders("msg_1", now, "v1a,abc v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))+" "+sig(supabaseNew, "msg_1", now))
	if id, err := v.Verify(t.Context(), h, body); err != nil || id != "msg_1" {
		t.Fatalf("several entries: %q %v", id, err)
	}
	// The older secret of a rotation still verifies.
	if _, err := v.Verify(t.Context(), webhookHeaders("msg_2", now, sig(supabaseOld, "msg_2", now)), body); err != nil {
		t.Fatalf("second secret: %v", err)
	}
	// Timestamps: 5 minutes both ways inclusive, not beyond.
	for _, c := range []struct {
		off time.Duration
		ok  bool
	}{{-5 * time.Minute, true}, {5 * time.Minute, true}, {-5*time.Minute - time.Second, false}, {5*time.Minute + time.Second, false}} {
		id := fmt.Sprintf("msg_ts_%d", c.off)
		at := now.Add(c.off)
		_, err := v.Verify(t.Context(), webhookHeaders(id, at, sig(supabaseNew, id, at)), body)
		if (err == nil) != c.ok {
			t.Errorf("timestamp offset %s: err %v, want ok=%v", c.off, err, c.ok)
		}
		if err != nil && !errors.Is(err, runtime.ErrUnauthenticated) {
			t.Errorf("timestamp error %v does not match ErrUnauthenticated", err)
		}
	}
	// The id signed for one body does not verify another, nor another id.
	if _, err := v.Verify(t.Context(), webhookHeaders("msg_3", now, sig(supabaseNew, "msg_other", now)), body); err == nil {
		t.Error("signature of another id accepted")
	}
	for _, h := range []http.Header{
		webhookHeaders("", now, sig(supabaseNew, "", now)),
		webhookHeaders("msg_4", now, ""),
		webhookHeaders("msg_4", now, "v1,not-base64"),
		webhookHeaders(strings.Repeat("x", 300), now, sig(supabaseNew, strings.Repeat("x", 300), now)),
		{"Webhook-Id": {"msg_5"}, "Webhook-Timestamp": {"yesterday"}, "Webhook-Signature": {sig(supabaseNew, "msg_5", now)}},
	} {
		if _, err := v.Verify(t.Context(), h, body); !errors.Is(err, runtime.ErrUnauthenticated) {
			t.Errorf("headers %v: %v, want ErrUnauthenticated", h, err)
		}
	}
}

func TestWebhookReplayWindow(t *testing.T) {
	now := t0
	v, err := login.NewWebhookVerifier(nativeSecret, login.WebhookOptions{Now: func() time.Time { return now }, ReplayCacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{}`)
	send := func(id string, at time.Time) error {
		_, err := v.Verify(t.Context(), webhookHeaders(id, at, login.SignWebhook(nativeKey, id, at, body)), body)
		return err
	}
	if err := send("a", now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(4 * time.Minute)
	if err := send("a", t0); err == nil || !strings.Contains(err.Error(), "replay") {
		t.Fatalf("replay within the window: %v", err)
	}
	// The id is also refused with a fresh timestamp while remembered.
	if err := send("a", now); err == nil {
		t.Fatal("same id with a new timestamp accepted within the window")
	}
	if err := send("b", now); err != nil {
		t.Fatal(err)
	}
	// Cache of 2, both unexpired: a third id is refused rather than
	// forgetting one that could then be replayed.
	if err := send("c", now); !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("full replay cache: %v, want ErrUnavailable", err)
	}
	// Once "a" has left the window (t0+5m), its slot is free; a replay of
	// a's original message is now stale by its timestamp.
	now = t0.Add(5*time.Minute + time.Second)
	if err := send("c", now); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if err := send("a", t0); err == nil {
		t.Fatal("a stale replay was accepted")
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c := login.NewReplayCache(100)
	for i := 0; i < 10_000; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		ok, err := c.Remember(t.Context(), fmt.Sprint(i), now, now.Add(50*time.Second))
		if err != nil || !ok {
			t.Fatalf("id %d: %v %v", i, ok, err)
		}
		if c.Len() > 100 {
			t.Fatalf("cache grew to %d entries", c.Len())
		}
	}
}

func TestZitadelSignature(t *testing.T) {
	now := t0
	v, err := login.NewZitadelVerifier([]string{"old-key", zitadelKey}, 0, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"function":"function/preaccesstoken"}`)
	if _, err := v.Verify(t.Context(), login.SignZitadel(zitadelKey, now, body), body); err != nil {
		t.Fatal(err)
	}
	// Zitadel sends one v1 per signing key.
	body2 := []byte(`{"function":"function/preuserinfo"}`)
	multi := login.SignZitadel("unknown", now, body2) + ",v1=" + strings.SplitN(login.SignZitadel("old-key", now, body2), "v1=", 2)[1]
	if _, err := v.Verify(t.Context(), multi, body2); err != nil {
		t.Fatalf("several v1 parts: %v", err)
	}
	for name, h := range map[string]string{
		"stale":        login.SignZitadel(zitadelKey, now.Add(-301*time.Second), body),
		"future":       login.SignZitadel(zitadelKey, now.Add(301*time.Second), body),
		"other body":   login.SignZitadel(zitadelKey, now, []byte(`{}`)),
		"no timestamp": "v1=" + strings.SplitN(login.SignZitadel(zitadelKey, now, body), "v1=", 2)[1],
		"no v1":        fmt.Sprintf("t=%d", now.Unix()),
		"garbage":      "hello",
		"two t":        fmt.Sprintf("t=%d,", now.Unix()) + login.SignZitadel(zitadelKey, now, body),
	} {
		if _, err := v.Verify(t.Context(), h, body); !errors.Is(err, runtime.ErrUnauthenticated) {
			t.Errorf("%s: %v, want ErrUnauthenticated", name, err)
		}
	}
	if _, err := login.NewZitadelVerifier(nil, 0, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("no keys: %v", err)
	}
}

func TestKeySet(t *testing.T) {
	ks := hooks.NewKeySet("alpha", "", "beta")
	if ks.Len() != 2 || !ks.Match("alpha") || !ks.Match("beta") || ks.Match("") || ks.Match("alph") || ks.Match("alphaa") {
		t.Fatal("KeySet matches wrongly")
	}
	var none *hooks.KeySet
	if none.Match("alpha") {
		t.Fatal("nil KeySet matched")
	}
}

func TestHooksConfigErrors(t *testing.T) {
	deps := login.Deps{Enricher: &hookstest.Recorder{}, Getenv: func(string) string { return "" }}
	for want, cfg := range map[string]*login.Config{
		"hooks.hydra.api_key_env: environment variable CLAIMSMITH_HYDRA_API_KEY": {Hydra: &login.HydraConfig{APIKeyEnv: "CLAIMSMITH_HYDRA_API_KEY"}},
		"hooks.native.callers[0].name":                                           {Native: &login.NativeConfig{Callers: []login.CallerConfig{{BearerKey: "k"}}}},
		"hooks.native.callers[0] (x): needs":                                     {Native: &login.NativeConfig{Callers: []login.CallerConfig{{Name: "x"}}}},
		"hooks.native.callers[0].webhook_secret: invalid":                        {Native: &login.NativeConfig{Callers: []login.CallerConfig{{Name: "x", WebhookSecret: "plain"}}}},
		"hooks.supabase.secret_env":                                              {Supabase: &login.SupabaseConfig{Secret: "nope"}},
		"hooks.zitadel.signing_key_env":                                          {Zitadel: &login.ZitadelConfig{}},
		"hooks.policy: no authorization store":                                   {Policy: &login.PolicyConfig{APIKey: "k"}},
		"hooks.native.callers: at least one caller":                              {Native: &login.NativeConfig{}},
	} {
		_, err := cfg.Build(deps)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("Build error %v, want ErrInvalid containing %q", err, want)
		}
	}
}
