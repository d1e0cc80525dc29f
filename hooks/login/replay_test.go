package login_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/replay"
	"github.com/claimsmith/claimsmith/runtime/replay/replaytest"
)

// TestReplayCacheConformance: the in-process cache keeps the replay.Store
// contract runtime/replay/redis keeps (views of one node are the cache).
func TestReplayCacheConformance(t *testing.T) {
	replaytest.Stores(t, func(t *testing.T) func() replay.Store {
		c := login.NewReplayCache(1000)
		return func() replay.Store { return c }
	})
}

// TestZitadelReplayRefused (issue 14 item 4): a signed Zitadel request is
// accepted once within its window; its replay is refused (401), also when
// the replay carries only one of the signatures of a key change; the same
// user's next request (another timestamp) is accepted.
func TestZitadelReplayRefused(t *testing.T) {
	ts := newDialectServer(t, nil)
	body := readPayload(t, "zitadel/preaccesstoken.request.json")
	sign := func(h http.Header, b []byte) {
		h.Set(login.ZitadelSignatureHeader, login.SignZitadel("other-key", t0, b)+",v1="+strings.SplitN(login.SignZitadel(zitadelKey, t0, b), "v1=", 2)[1])
	}
	if st, b, _ := ts.post(t, "/hooks/zitadel/preaccesstoken", body, sign); st != http.StatusOK {
		t.Fatalf("first: %d %s", st, b)
	}
	for name, s := range map[string]signer{
		"the same header": sign,
		"one signature":   signZitadel(t0),
	} {
		if st, b, _ := ts.post(t, "/hooks/zitadel/preaccesstoken", body, s); st != http.StatusUnauthorized {
			t.Fatalf("replay with %s: %d %s, want 401", name, st, b)
		}
	}
	ts.setNow(t0.Add(time.Second))
	next := func(h http.Header, b []byte) {
		h.Set(login.ZitadelSignatureHeader, login.SignZitadel(zitadelKey, t0.Add(time.Second), b))
	}
	if st, b, _ := ts.post(t, "/hooks/zitadel/preaccesstoken", body, next); st != http.StatusOK {
		t.Fatalf("next request: %d %s", st, b)
	}
}

// TestZitadelReplayID: the id covers the timestamp and the body, nothing
// else.
func TestZitadelReplayID(t *testing.T) {
	a := login.ZitadelRequestID(1, []byte("x"))
	if a == login.ZitadelRequestID(2, []byte("x")) || a == login.ZitadelRequestID(1, []byte("y")) || a != login.ZitadelRequestID(1, []byte("x")) {
		t.Fatal("ids do not follow timestamp and body")
	}
	v, err := login.NewZitadelVerifier([]string{zitadelKey}, 0, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"user":{"id":"u"}}`)
	id, err := v.Verify(t.Context(), login.SignZitadel(zitadelKey, t0, body), body)
	if err != nil || id != login.ZitadelRequestID(t0.Unix(), body) {
		t.Fatalf("%q %v", id, err)
	}
	if _, err := v.Verify(t.Context(), login.SignZitadel(zitadelKey, t0, body), body); !errors.Is(err, runtime.ErrUnauthenticated) {
		t.Fatalf("replay: %v", err)
	}
	// A failure on our side releases the id: the retry is accepted.
	v.Release(t.Context(), id)
	if _, err := v.Verify(t.Context(), login.SignZitadel(zitadelKey, t0, body), body); err != nil {
		t.Fatalf("retry after release: %v", err)
	}
}

// TestReplayNotAcceptedByAnotherCaller: when two native callers share a
// webhook secret, a replay refused for the first is not accepted as the
// second's message (each caller has its own replay scope).
func TestReplayNotAcceptedByAnotherCaller(t *testing.T) {
	ts := newDialectServer(t, func(c *login.Config) {
		c.Native.Callers = append(c.Native.Callers, login.CallerConfig{Name: "auth0-copy", WebhookSecret: nativeSecret})
	})
	body := readPayload(t, "native/post-login.request.json")
	if st, b, _ := ts.post(t, "/hooks/v1/post-login", body, signNative("msg_shared_secret", t0)); st != http.StatusOK {
		t.Fatalf("first: %d %s", st, b)
	}
	if st, b, _ := ts.post(t, "/hooks/v1/post-login", body, signNative("msg_shared_secret", t0)); st != http.StatusUnauthorized {
		t.Fatalf("replay: %d %s, want 401", st, b)
	}
}

// TestZitadelReplayCheckOff: hooks.zitadel.replay_check: false accepts a
// byte-identical request again (the timestamp window still applies).
func TestZitadelReplayCheckOff(t *testing.T) {
	off := false
	ts := newDialectServer(t, func(c *login.Config) { c.Zitadel.ReplayCheck = &off })
	body := readPayload(t, "zitadel/preaccesstoken.request.json")
	for i := range 2 {
		if st, b, _ := ts.post(t, "/hooks/zitadel/preaccesstoken", body, signZitadel(t0)); st != http.StatusOK {
			t.Fatalf("call %d: %d %s", i+1, st, b)
		}
	}
	if st, _, _ := ts.post(t, "/hooks/zitadel/preaccesstoken", body, signZitadel(t0.Add(-10*time.Minute))); st != http.StatusUnauthorized {
		t.Fatalf("stale timestamp: %d, want 401", st)
	}
}
