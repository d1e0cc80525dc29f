package setup_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/login"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/redistest"
	"github.com/claimsmith/claimsmith/runtime/setup"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// The fault matrix (issue 14): for each fault of the store's Redis, under
// each store.on_unavailable policy, the login outcome and /readyz are what
// the README's "Failure modes" table says — the test reads the table, so
// the two cannot drift apart — and a user denied by required_roles is never
// allowed, before, during or after the fault.
//
// Cells are read by their leading words:
//
//	logins:  "503/504" — every login fails with 503 or 504;
//	         "503 (data loss)" — every login fails with 503 and /readyz
//	                            names the data loss;
//	         "answered" — alice allowed, mallory denied, nothing degraded;
//	         "answered from the snapshot, `degraded`" — the same, and the
//	                            answer and the metrics flag the degradation.
//	         Signed webhook logins (Standard Webhooks) answer the same,
//	         unless the cell goes on "; signed webhooks 503/504": their
//	         replay check needs Redis, so they fail closed.
//	/readyz: "<status code> `<status>`".
//	introspection (of a token revoked before the fault, either policy):
//	         "503/504"; "503 (data loss)" — 503, and /readyz names the
//	         revocations' loss; "`active: false`". A cell going on
//	         "tokens issued after the loss answered" is also checked with
//	         a token minted after the loss was detected (revoked: inactive,
//	         else active). The revoked token is never answered active.

const faultConfig = `server:
  addr: 127.0.0.1:0
pipeline:
  namespace: https://example.com/
  timeout: 10s
  rules:
    - rule: authorization
      timeout: 5s
      on_error: skip
      config:
        persist: {roles: true}
    - rule: required-roles
tokens:
  issuer: https://auth.example.com
  algorithm: ES256
  leeway: 1s
  introspection:
    clients:
      - {client_id: api, secret_env: T_INTROSPECT}
hooks:
  native:
    callers:
      - name: idp
        bearer_key_env: T_BEARER
        webhook_secret_env: T_WHSEC
store:
  backend: redis
  on_unavailable: %s
  max_staleness: 10m
redis:
  addrs: [%q]
  key_prefix: "fm:"
  dial_timeout: 300ms
  read_timeout: 300ms
  write_timeout: 300ms
`

const faultBearer = "fault-matrix-bearer-key-0123456789"

const faultIntrospectSecret = "fault-matrix-introspection-secret-0123"

var faultWebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("fault-matrix-webhook-secret-0123"))

// faultRow is one row of the README's table.
type faultRow struct {
	fault  string
	logins map[string]string // by policy
	ready  map[string]string
	// introspect: introspection of a revoked token (both policies).
	introspect string
}

func readFailureModes(t *testing.T) []faultRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(b, []byte("**Failure modes**"))
	if !ok {
		t.Fatal(`README.md has no "**Failure modes**" table`)
	}
	var rows []faultRow
	sc := bufio.NewScanner(bytes.NewReader(after))
	inTable := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) != 6 {
			t.Fatalf("README failure modes row %q: %d cells, want 6", line, len(cells))
		}
		if cells[0] == "fault" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		rows = append(rows, faultRow{fault: cells[0],
			logins:     map[string]string{"fail_closed": cells[1], "last_snapshot": cells[2]},
			ready:      map[string]string{"fail_closed": cells[3], "last_snapshot": cells[4]},
			introspect: cells[5]})
	}
	if len(rows) != 5 {
		t.Fatalf("README failure modes: %d rows, want 5 (frozen, killed, restarted with data, restarted empty, FLUSHALL)", len(rows))
	}
	return rows
}

// inject applies the fault a row names to srv (a frozen server is thawed
// at the test's end).
func inject(t *testing.T, fault string, srv *redistest.Server) {
	t.Helper()
	switch {
	case strings.Contains(fault, "frozen"):
		srv.Freeze()
		t.Cleanup(srv.Thaw)
	case strings.Contains(fault, "killed"):
		srv.Kill()
	case strings.Contains(fault, "restarted with its data"):
		srv.Restart()
	case strings.Contains(fault, "restarted empty"):
		srv.RestartEmpty()
	case strings.Contains(fault, "FLUSHALL"):
		if _, err := srv.Do("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("README failure mode %q: the test does not know how to cause it", fault)
	}
}

// loginOutcome is one post-login's answer.
type loginOutcome struct {
	status   int
	allowed  bool
	degraded []string
	body     string
}

type faultClient struct {
	base string
	http *http.Client
	// signed: logins carry a Standard Webhooks signature (a new message
	// id each) instead of the bearer key.
	signed bool
	n      *atomic.Int64
}

func (c faultClient) login(t *testing.T, user string) loginOutcome {
	t.Helper()
	ev := map[string]any{"user": map[string]any{"user_id": user}, "client": map[string]any{"client_id": "portal"}}
	b, _ := json.Marshal(ev)
	req, _ := http.NewRequest(http.MethodPost, c.base+"/hooks/v1/post-login", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if c.signed {
		keys, err := login.ParseWebhookSecrets(faultWebhookSecret)
		if err != nil {
			t.Fatal(err)
		}
		id, now := fmt.Sprintf("msg_fault_%d", c.n.Add(1)), time.Now()
		req.Header.Set(login.HeaderWebhookID, id)
		req.Header.Set(login.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(login.HeaderWebhookSignature, login.SignWebhook(keys[0], id, now, b))
	} else {
		req.Header.Set("Authorization", "Bearer "+faultBearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("post-login %s: %v", user, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := loginOutcome{status: resp.StatusCode, body: string(body)}
	if resp.StatusCode == http.StatusOK {
		var r struct {
			Decision struct {
				Allowed bool `json:"allowed"`
			} `json:"decision"`
			Degraded []string `json:"degraded"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("post-login %s: %v: %s", user, err, body)
		}
		out.allowed, out.degraded = r.Decision.Allowed, r.Degraded
	}
	if user == "auth0|mallory" && out.allowed {
		t.Fatalf("FAIL OPEN: mallory (denied by required_roles) was allowed: %s", body)
	}
	return out
}

func (c faultClient) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var readyCell = regexp.MustCompile("^(\\d{3}) `([a-z]+)`")

// wantReady parses a /readyz cell.
func wantReady(t *testing.T, cell string) (int, string) {
	t.Helper()
	m := readyCell.FindStringSubmatch(cell)
	if m == nil {
		t.Fatalf("README /readyz cell %q: want \"CODE `status`\"", cell)
	}
	code, _ := strconv.Atoi(m[1])
	return code, m[2]
}

// loginsMatch says whether alice's and mallory's outcomes are what the cell
// says, and why not.
func loginsMatch(cell string, alice, mallory loginOutcome) error {
	switch {
	case strings.HasPrefix(cell, "503/504"):
		for _, o := range []loginOutcome{alice, mallory} {
			if o.status != http.StatusServiceUnavailable && o.status != http.StatusGatewayTimeout {
				return fmt.Errorf("login answered %d, want 503/504: %s", o.status, o.body)
			}
		}
	case strings.HasPrefix(cell, "503"):
		for _, o := range []loginOutcome{alice, mallory} {
			if o.status != http.StatusServiceUnavailable {
				return fmt.Errorf("login answered %d, want 503: %s", o.status, o.body)
			}
		}
	case strings.HasPrefix(cell, "answered"):
		if alice.status != http.StatusOK || !alice.allowed || mallory.status != http.StatusOK || mallory.allowed {
			return fmt.Errorf("alice %d allowed=%v, mallory %d allowed=%v; want alice allowed, mallory denied (%s | %s)",
				alice.status, alice.allowed, mallory.status, mallory.allowed, alice.body, mallory.body)
		}
		degraded := strings.Contains(cell, "`degraded`")
		if got := len(alice.degraded) > 0; got != degraded {
			return fmt.Errorf("alice's answer degraded=%v %q, want degraded=%v", got, alice.degraded, degraded)
		}
	default:
		return fmt.Errorf("README logins cell %q: the test does not know it", cell)
	}
	return nil
}

func TestFaultMatrix(t *testing.T) {
	rows := readFailureModes(t)
	for _, policy := range []string{"fail_closed", "last_snapshot"} {
		for _, row := range rows {
			t.Run(policy+"/"+row.fault, func(t *testing.T) {
				runFaultRow(t, policy, row)
			})
		}
	}
}

func runFaultRow(t *testing.T, policy string, row faultRow) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(faultConfig, policy, srv.Addr())), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := setup.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env := setup.Env{DataDir: filepath.Join(dir, "data"), Getenv: func(k string) string {
		return map[string]string{"T_BEARER": faultBearer, "T_WHSEC": faultWebhookSecret, "T_INTROSPECT": faultIntrospectSecret}[k]
	}}
	s, err := setup.Build(ctx, cfg, setup.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	doc := &authz.Document{
		Roles: []authz.Role{{ID: "r-viewer", Name: "viewer", ApplicationType: authz.TypeClient, ApplicationID: "portal", Users: []string{"auth0|alice"}}},
	}
	if _, err := s.Store().Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc},
		&authz.PutApplication{Application: authz.Application{ClientID: "portal", Name: "Portal", Metadata: map[string]string{"required_roles": "viewer"}}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, ln) }()
	t.Cleanup(func() { stop(); <-done })
	c := faultClient{base: "http://" + ln.Addr().String(), http: &http.Client{Timeout: 60 * time.Second}, n: new(atomic.Int64)}
	sc := c
	sc.signed = true

	// Before the fault: answered, ready (the snapshot refresher may need
	// a moment to see the import).
	eventually(t, "before the fault", func() error {
		if code, body := c.get(t, "/readyz"); code != http.StatusOK || !strings.Contains(body, `"ready"`) {
			return fmt.Errorf("/readyz %d %s", code, body)
		}
		if err := loginsMatch("answered", c.login(t, "auth0|alice"), c.login(t, "auth0|mallory")); err != nil {
			return err
		}
		return loginsMatch("answered", sc.login(t, "auth0|alice"), sc.login(t, "auth0|mallory"))
	})
	revoked := c.mint(t, s)
	c.revoke(t, revoked)
	if r := c.introspect(t, revoked); r.code != http.StatusOK || r.active {
		t.Fatalf("before the fault: revoked token introspected %d active=%v", r.code, r.active)
	}

	inject(t, row.fault, srv)

	wantCode, wantStatus := wantReady(t, row.ready[policy])
	cell := row.logins[policy]
	eventually(t, fmt.Sprintf("%s under %s: logins %q, /readyz %q", row.fault, policy, cell, row.ready[policy]), func() error {
		intro := introspectMatch(row.introspect, c.introspect(t, revoked))
		if errors.Is(intro, errFailOpen) {
			t.Fatalf("%s under %s: %v", row.fault, policy, intro)
		}
		code, body := c.get(t, "/readyz")
		var r struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		if code != wantCode || r.Status != wantStatus {
			return fmt.Errorf("/readyz %d %s", code, body)
		}
		if strings.Contains(cell, "data loss") && !strings.Contains(body, "lost") {
			return fmt.Errorf("/readyz does not name the data loss: %s", body)
		}
		if err := loginsMatch(cell, c.login(t, "auth0|alice"), c.login(t, "auth0|mallory")); err != nil {
			return err
		}
		if err := loginsMatch(signedCell(cell), sc.login(t, "auth0|alice"), sc.login(t, "auth0|mallory")); err != nil {
			return fmt.Errorf("signed: %w", err)
		}
		if strings.Contains(row.introspect, "data loss") && !strings.Contains(body, "revocations") {
			return fmt.Errorf("/readyz does not name the revocations' loss: %s", body)
		}
		return intro
	})
	// The state holds: a few more logins answer the same.
	for range 3 {
		if err := loginsMatch(cell, c.login(t, "auth0|alice"), c.login(t, "auth0|mallory")); err != nil {
			t.Fatalf("%s under %s, settled: %v", row.fault, policy, err)
		}
		if err := loginsMatch(signedCell(cell), sc.login(t, "auth0|alice"), sc.login(t, "auth0|mallory")); err != nil {
			t.Fatalf("%s under %s, settled, signed: %v", row.fault, policy, err)
		}
	}
	if err := introspectMatch(row.introspect, c.introspect(t, revoked)); err != nil {
		t.Fatalf("%s under %s, settled: introspection: %v", row.fault, policy, err)
	}
	if strings.Contains(row.introspect, "tokens issued after the loss answered") && policy == "fail_closed" {
		// The loss was detected by now: a token issued more than the
		// leeway (1s) later is checked against the entries made since
		// (the store's policy plays no part: checked once).
		time.Sleep(2100 * time.Millisecond)
		later, again := c.mint(t, s), c.mint(t, s)
		c.revoke(t, later)
		if r := c.introspect(t, later); r.code != http.StatusOK || r.active {
			t.Fatalf("token issued after the loss, revoked: introspected %d active=%v", r.code, r.active)
		}
		if r := c.introspect(t, again); r.code != http.StatusOK || !r.active {
			t.Fatalf("token issued after the loss: introspected %d active=%v, want active", r.code, r.active)
		}
	}
	if strings.Contains(cell, "`degraded`") {
		_, metrics := c.get(t, "/metrics")
		for _, op := range []string{"profile", "patch_profile"} {
			if !regexp.MustCompile(`claimsmith_store_degraded_total\{op="` + op + `"\} [1-9]`).MatchString(metrics) {
				t.Fatalf("metrics do not count degraded %s answers:\n%s", op, grepLines(metrics, "claimsmith_store_degraded_total"))
			}
		}
	}
}

// mint signs an access token for alice at portal.
func (c faultClient) mint(t *testing.T, s *setup.Server) string {
	t.Helper()
	m, err := s.Tokens().Minter.MintAccessToken(context.Background(), token.AccessTokenRequest{Subject: "auth0|alice", ClientID: "portal"})
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

func (c faultClient) oauth(t *testing.T, path, tok string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("api", faultIntrospectSecret)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (c faultClient) revoke(t *testing.T, tok string) {
	t.Helper()
	if code, body := c.oauth(t, "/oauth2/revoke", tok); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
}

// introspect answers the status and, for a 200, whether the token is
// active.
func (c faultClient) introspect(t *testing.T, tok string) introspected {
	t.Helper()
	code, body := c.oauth(t, "/oauth2/introspect", tok)
	var r struct {
		Active bool `json:"active"`
	}
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("introspect: %v: %s", err, body)
		}
	}
	return introspected{code, r.Active}
}

type introspected struct {
	code   int
	active bool
}

var errFailOpen = errors.New("FAIL OPEN")

// introspectMatch says whether the introspection of the revoked token is
// what the cell says; a revoked token answered active fails the test.
func introspectMatch(cell string, r introspected) error {
	code, active := r.code, r.active
	switch {
	case code == http.StatusOK && active:
		return fmt.Errorf("%w: a revoked token was introspected active", errFailOpen)
	case strings.HasPrefix(cell, "503/504"):
		if code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout {
			return fmt.Errorf("introspection answered %d, want 503/504", code)
		}
	case strings.HasPrefix(cell, "503"):
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("introspection answered %d, want 503", code)
		}
	case strings.HasPrefix(cell, "`active: false`"):
		if code != http.StatusOK {
			return fmt.Errorf("introspection answered %d, want 200 inactive", code)
		}
	default:
		return fmt.Errorf("README introspection cell %q: the test does not know it", cell)
	}
	return nil
}

// signedCell is what a logins cell says of signed webhook logins.
func signedCell(cell string) string {
	if _, signed, ok := strings.Cut(cell, "; signed webhooks "); ok {
		return signed
	}
	return cell
}

// eventually polls f until it succeeds, with a bound generous enough for a
// loaded -race run; the last error names what never happened.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
