package setup_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime/redistest"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

// Replay protection across nodes (issue 14 item 4): with the Redis store,
// signed webhook ids are remembered in Redis, so a signed request accepted
// by one node is refused by every other node and by a restarted node; with
// Redis unavailable a signed request is refused (503/504), never accepted
// unchecked.

const replayConfig = `server:
  addr: 127.0.0.1:0
pipeline:
  namespace: https://example.com/
  rules:
    - rule: required-roles
tokens:
  issuer: https://auth.example.com
  algorithm: ES256
hooks:
  native:
    callers:
      - name: idp
        webhook_secret_env: T_WHSEC
        bearer_key_env: T_BEARER
        mint: true
  zitadel:
    signing_key_env: T_ZITADEL
store:
  backend: redis
  on_unavailable: %s
redis:
  addrs: [%q]
  key_prefix: "rp:"
  dial_timeout: 300ms
  read_timeout: 300ms
  write_timeout: 300ms
`

var replayEnv = map[string]string{
	"T_WHSEC":   "whsec_" + base64.StdEncoding.EncodeToString([]byte("replay-test-webhook-secret-0123456789")),
	"T_BEARER":  "replay-test-bearer-key-0123456789",
	"T_ZITADEL": "replay-test-zitadel-signing-key",
}

// replayNode is one in-process server on the shared Redis, with its own
// data dir and process state.
type replayNode struct {
	base string
	stop func()
}

func startReplayNode(t *testing.T, path string) *replayNode {
	t.Helper()
	ctx := context.Background()
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// Errors (a 5xx names only its trace id) go to the test's log.
	env := setup.Env{DataDir: t.TempDir(), Getenv: func(k string) string { return replayEnv[k] },
		Log: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))}
	s, err := setup.Build(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	n := &replayNode{base: "http://" + ln.Addr().String()}
	var stopped bool
	n.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			_ = s.Close()
		}
	}
	t.Cleanup(n.stop)
	return n
}

// testLogWriter writes log lines to the test's log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// signedRequest is one captured signed request: path, headers and body.
type signedRequest struct {
	path string
	h    http.Header
	body []byte
}

func nativeSigned(t *testing.T, id string, at time.Time) signedRequest {
	t.Helper()
	keys, err := login.ParseWebhookSecrets(replayEnv["T_WHSEC"])
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"user":{"user_id":"auth0|alice"},"client":{"client_id":"portal"}}`)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(login.HeaderWebhookID, id)
	h.Set(login.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(login.HeaderWebhookSignature, login.SignWebhook(keys[0], id, at, body))
	return signedRequest{path: "/hooks/v1/post-login", h: h, body: body}
}

func zitadelSigned(user string, at time.Time) signedRequest {
	body := []byte(`{"function":"function/preaccesstoken","user":{"id":"` + user + `"}}`)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(login.ZitadelSignatureHeader, login.SignZitadel(replayEnv["T_ZITADEL"], at, body))
	return signedRequest{path: "/hooks/zitadel/preaccesstoken", h: h, body: body}
}

func (n *replayNode) send(t *testing.T, r signedRequest) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.base+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (n *replayNode) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func writeReplayConfig(t *testing.T, policy, addr string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(replayConfig, policy, addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplayRefusedAcrossNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	path := writeReplayConfig(t, "fail_closed", srv.Addr())
	a, b := startReplayNode(t, path), startReplayNode(t, path)
	now := time.Now()
	for _, r := range []signedRequest{nativeSigned(t, "msg_two_nodes", now), zitadelSigned("zitadel-user-1", now)} {
		if st, body := a.send(t, r); st != http.StatusOK {
			t.Fatalf("%s on node A: %d %s", r.path, st, body)
		}
		for name, n := range map[string]*replayNode{"A": a, "B": b} {
			if st, body := n.send(t, r); st != http.StatusUnauthorized {
				t.Fatalf("replay of %s on node %s: %d %s, want 401", r.path, name, st, body)
			}
		}
	}
	// A restarted node (new process state, new data dir) refuses it too.
	a.stop()
	a2 := startReplayNode(t, path)
	if st, body := a2.send(t, nativeSigned(t, "msg_two_nodes", now)); st != http.StatusUnauthorized {
		t.Fatalf("replay on restarted node A: %d %s, want 401", st, body)
	}
	// A new message is still accepted, on either node.
	if st, body := b.send(t, nativeSigned(t, "msg_new", now)); st != http.StatusOK {
		t.Fatalf("new message on B: %d %s", st, body)
	}
	m := b.metrics(t)
	// The budget of unauthenticated bodies is exposed, at its default.
	for _, series := range []string{"claimsmith_unauthenticated_body_budget_bytes 3.3554432e+07", "claimsmith_unauthenticated_body_bytes 0", "claimsmith_unauthenticated_body_refusals_total 0"} {
		if !strings.Contains(m, series) {
			t.Fatalf("node B's metrics lack %q:\n%s", series, grepLines(m, "unauthenticated"))
		}
	}
	for _, v := range []string{"native/idp", "zitadel"} {
		re := regexp.MustCompile(`claimsmith_webhook_replay_refusals_total\{reason="replay",verifier="` + v + `"\} 1\b`)
		if !re.MatchString(m) {
			t.Fatalf("node B's metrics do not count the %s replay:\n%s", v, grepLines(m, "replay"))
		}
	}
}

// TestReplayStoreDownFailsClosed: with the store's Redis down, a signed
// login is refused (503), under either store.on_unavailable policy: a
// snapshot cannot say whether a message was seen. Once Redis is back, a
// message accepted before is still refused.
func TestReplayStoreDownFailsClosed(t *testing.T) {
	for _, policy := range []string{"fail_closed", "last_snapshot"} {
		t.Run(policy, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{AppendOnly: true})
			n := startReplayNode(t, writeReplayConfig(t, policy, srv.Addr()))
			now := time.Now()
			first := nativeSigned(t, "msg_before", now)
			if st, body := n.send(t, first); st != http.StatusOK {
				t.Fatalf("before: %d %s", st, body)
			}
			srv.Kill()
			for _, r := range []signedRequest{nativeSigned(t, "msg_during", now), zitadelSigned("zitadel-user-2", now), first} {
				if st, body := n.send(t, r); st != http.StatusServiceUnavailable && st != http.StatusGatewayTimeout {
					t.Fatalf("%s with Redis down: %d %s, want 503/504", r.path, st, body)
				}
			}
			if m := n.metrics(t); !regexp.MustCompile(`claimsmith_webhook_replay_refusals_total\{reason="unavailable",verifier="native/idp"\} [1-9]`).MatchString(m) {
				t.Fatalf("metrics do not count the refusals:\n%s", grepLines(m, "replay"))
			}
			srv.Restart()
			eventually(t, "Redis back", func() error {
				if st, body := n.send(t, first); st != http.StatusUnauthorized {
					return fmt.Errorf("replay after Redis came back: %d %s, want 401", st, body)
				}
				return nil
			})
		})
	}
}
