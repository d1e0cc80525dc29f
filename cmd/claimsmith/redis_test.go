package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

// The tests of this file run claimsmith against real redis-server processes
// (runtime/redistest: a free port each, killed and restarted by the test).
// Without redis-server they are skipped, unless $CLAIMSMITH_REQUIRE_REDIS is
// set (make test), which makes them fail.

// twoNodeDoc is the authorization data of the node tests: one group with
// one role for the portal client.
const twoNodeDoc = `{
  "configuration": [],
  "groups": [{"_id": "g-eng", "name": "Engineering", "description": "", "members": ["auth0|alice"], "roles": ["r-viewer"], "nested": [], "mappings": []}],
  "roles": [{"_id": "r-viewer", "name": "viewer", "description": "", "applicationType": "client", "applicationId": "portal", "permissions": ["p-read"], "users": []}],
  "permissions": [{"_id": "p-read", "name": "read:docs", "description": "", "applicationType": "client", "applicationId": "portal"}]
}
`

const (
	nodeNS     = "https://claimsmith.test/"
	nodeBearer = "node-test-bearer-key-0123456789"
	nodeRS     = "node-test-introspection-secret-0123456789"
)

// nodeConfig is a config for serve (the address comes from --addr): native
// post-login with minting, ES256 keys re-read every 200ms and a rotated key
// signing after 1s, one introspection client, and the given backend
// sections.
func nodeConfig(backends string) string {
	return `pipeline:
  namespace: ` + nodeNS + `
  rules:
    - rule: authorization
hooks:
  native:
    callers:
      - name: idp
        bearer_key_env: NODE_TEST_BEARER
        mint: true
tokens:
  issuer: https://claimsmith.test
  algorithm: ES256
  propagation_delay: 1s
  key_reload: 200ms
  introspection:
    clients:
      - client_id: rs
        secret_env: NODE_TEST_RS_SECRET
` + backends
}

// lockedBuffer collects a process's output for the failure log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// node is one `claimsmith serve` process.
type node struct {
	name string
	url  string
	out  *lockedBuffer
}

// startNode runs `claimsmith serve` in-process (run, with its flags, then
// the server runtime/setup builds) and waits until it answers /healthz.
// The node's secrets come from the environment, set for the test.
func startNode(t *testing.T, name string, args ...string) *node {
	t.Helper()
	setNodeEnv(t)
	addr := freeAddr(t)
	n := &node{name: name, url: "http://" + addr, out: &lockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(args, "serve", "--addr", addr), strings.NewReader(""), n.out, n.out) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			// Skip the per-login lines: the rest tells what went wrong.
			var lines []string
			for _, l := range strings.Split(n.out.String(), "\n") {
				if !strings.Contains(l, "msg=login ") {
					lines = append(lines, l)
				}
			}
			t.Logf("node %s output (without login lines):\n%s", name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case code := <-done:
			t.Fatalf("node %s exited with status %d:\n%s", name, code, n.out.String())
		default:
		}
		resp, err := http.Get(n.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not start: %v\n%s", name, err, n.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setNodeEnv sets the secrets nodeConfig names, for the test.
func setNodeEnv(t *testing.T) {
	t.Setenv("NODE_TEST_BEARER", nodeBearer)
	t.Setenv("NODE_TEST_RS_SECRET", nodeRS)
}

// loginResult is what the node tests read from a native post-login.
type loginResult struct {
	status  int
	allowed bool
	code    string
	groups  []string
	tokens  *login.MintedTokens
}

// login runs a native post-login for user at the portal client.
func (n *node) login(t *testing.T, user string, mint bool) loginResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"user": map[string]any{"user_id": user}, "client": map[string]any{"client_id": "portal"},
		"connection": map[string]any{"name": "db"}, "transaction": map[string]any{"requested_scopes": []string{"openid"}},
		"mint": mint,
	})
	req, _ := http.NewRequest(http.MethodPost, n.url+"/hooks/v1/post-login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+nodeBearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("login on %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var eb hooks.ErrorBody
		_ = json.Unmarshal(b, &eb)
		return loginResult{status: resp.StatusCode, code: eb.Error}
	}
	var ans login.NativeResponse
	if err := json.Unmarshal(b, &ans); err != nil {
		t.Fatalf("login on %s: %v: %s", n.name, err, b)
	}
	r := loginResult{status: resp.StatusCode, allowed: ans.Decision.Allowed, code: ans.Decision.Code, tokens: ans.Tokens}
	if ans.Authorization != nil {
		r.groups = ans.Authorization.Groups
	}
	return r
}

// mustLogin is login that must be allowed.
func (n *node) mustLogin(t *testing.T, user string) loginResult {
	t.Helper()
	r := n.login(t, user, false)
	if r.status != http.StatusOK || !r.allowed {
		t.Fatalf("login of %s on %s: %+v", user, n.name, r)
	}
	return r
}

// admin sends an admin API request with the admin key.
func (n *node) admin(t *testing.T, key, method, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, n.url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s on %s: %d %s", method, path, n.name, resp.StatusCode, msg)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}

// ready returns /readyz's status code and body.
func (n *node) ready(t *testing.T) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(n.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// revoke revokes tok on the node (RFC 7009).
func (n *node) revoke(t *testing.T, tok string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.url+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rs", nodeRS)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke on %s: %d", n.name, resp.StatusCode)
	}
}

// metrics is the node's /metrics text.
func (n *node) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// introspect asks the node's /oauth2/introspect about tok.
func (n *node) introspect(t *testing.T, tok string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.url+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rs", nodeRS)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect on %s: %d %v", n.name, resp.StatusCode, err)
	}
	return ans
}

// eventually polls cond every 10ms until it holds or max passes.
func eventually(t *testing.T, max time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > max {
			t.Fatalf("after %s: %s", max, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// binCLI runs a command in-process, as the binary would, and fails the
// test on a non-zero exit.
func binCLI(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	setNodeEnv(t)
	code, out, errs := cli(t, "", args...)
	if code != 0 {
		t.Fatalf("claimsmith %q: exit %d\n%s%s", args, code, out, errs)
	}
	return out, errs
}

func tokenKID(t *testing.T, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}

func durations(ds []time.Duration) string {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return fmt.Sprintf("n=%d min=%s median=%s p90=%s max=%s", len(s), s[0], s[len(s)/2], s[len(s)*9/10], s[len(s)-1])
}

// TestTwoNodesOnRedis is issue 7's two-node test: two `claimsmith serve`
// processes on one Redis store (store.backend redis) with the policy cache on
// a second Redis (cache.redis). An import command leaves no keys of the
// model it replaced; a membership change through node A's admin API (or a
// CLI write) reaches node B's next login within 1s; a key rotated with
// `claimsmith keys rotate` signs on A and verifies on B; a token revoked on
// A is inactive on B; with the cache's Redis killed,
// logins keep working and /readyz says degraded, and the cache resumes when
// it is back; with the store's Redis killed (fail_closed), logins fail closed
// and /readyz says unavailable until it is back.
func TestTwoNodesOnRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs claimsmith and redis-server; skipped with -short")
	}
	storeSrv := redistest.Start(t, redistest.Options{AppendOnly: true})
	cacheSrv := redistest.Start(t, redistest.Options{})
	tmp := t.TempDir()
	unused := filepath.Join(tmp, "unused-data-dir")
	cfg := filepath.Join(tmp, "claimsmith.yaml")
	conf := nodeConfig(fmt.Sprintf(`store:
  backend: redis
redis:
  addrs: [%s]
  key_prefix: "node-test:"
cache:
  redis:
    addrs: [%s]
    key_prefix: "node-test:"
  poll_interval: 500ms
`, storeSrv.Addr(), cacheSrv.Addr()))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	docPath := filepath.Join(tmp, "authz.json")
	if err := os.WriteFile(docPath, []byte(twoNodeDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	g := []string{"--config", cfg, "--data-dir", unused}
	// A large model first (about 69,000 keys), then the test's: the second
	// import command exits only after the first one's keys are deleted.
	big := filepath.Join(tmp, "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := authz.Encode(f, authzgen.Generate(authzgen.BenchSpec(20000)), authz.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The binary runs both imports: "exits" is a process exit, and the
	// 69,000 keys took most of a minute in-process under -race.
	setNodeEnv(t)
	bin := buildClaimsmith(t)
	if out, errs, code := runBinary(t, bin, append(g, "import", big)...); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code := runBinary(t, bin, append(g, "import", "--replace", docPath)...)
	if code != 0 || !strings.Contains(out, "store redis "+storeSrv.Addr()+" at revision 2") || !strings.Contains(out, "1 group, 1 role, 1 permission") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	if n, err := storeSrv.Do("EVAL", "return #redis.call('KEYS', 'node-test:{authz}:1:*')", "0"); err != nil || n != "0" {
		t.Fatalf("%s keys of the replaced generation remain after the import command exited (%v)", n, err)
	}
	out, _ = binCLI(t, append(g, "admin-key", "create", "--name", "ops", "--scopes", "all")...)
	key := strings.TrimSpace(out)

	a := startNode(t, "A", g...)
	b := startNode(t, "B", g...)
	for _, n := range []*node{a, b} {
		eventually(t, 10*time.Second, n.name+" ready", func() bool {
			st, body := n.ready(t)
			return st == http.StatusOK && body["status"] == "ready"
		})
		if r := n.mustLogin(t, "auth0|alice"); !slices.Equal(r.groups, []string{"Engineering"}) {
			t.Fatalf("alice on %s: %+v", n.name, r)
		}
	}

	// B's first login of alice was answered by the shared Redis cache (A
	// resolved it first).
	if m := b.metrics(t); !strings.Contains(m, `claimsmith_policy_cache_lookups_total{result="redis"} 1`) {
		t.Fatalf("B's lookups:\n%s", grepLines(m, "claimsmith_policy_cache_lookups_total"))
	}

	// Membership changes on A, seen by B's next login: measured from the
	// moment A's write returned until B's login shows it.
	var adds, removes []time.Duration
	for i := range 20 {
		user := fmt.Sprintf("auth0|two-node-%d", i)
		if r := b.mustLogin(t, user); len(r.groups) != 0 { // now cached on B
			t.Fatalf("%s before: %+v", user, r)
		}
		a.admin(t, key, http.MethodPatch, "/api/groups/g-eng/members", []string{user})
		if r := a.mustLogin(t, user); !slices.Contains(r.groups, "Engineering") {
			t.Fatalf("A's own next login misses A's write: %+v", r)
		}
		adds = append(adds, eventually(t, 10*time.Second, "B to see "+user+" added on A", func() bool {
			return slices.Contains(b.mustLogin(t, user).groups, "Engineering")
		}))
		a.admin(t, key, http.MethodDelete, "/api/groups/g-eng/members", []string{user})
		removes = append(removes, eventually(t, 10*time.Second, "B to see "+user+" removed on A", func() bool {
			return len(b.mustLogin(t, user).groups) == 0
		}))
	}
	t.Logf("write on A -> login on B reflects it: add %s; remove %s", durations(adds), durations(removes))

	// A CLI write straight to the Redis store (no server involved) also
	// reaches both nodes at once: the command publishes the invalidation.
	b.mustLogin(t, "auth0|cli-user")
	binCLI(t, append(g, "groups", "add-members", "g-eng", "auth0|cli-user")...)
	d := eventually(t, 10*time.Second, "B to see a CLI write", func() bool {
		return slices.Contains(b.mustLogin(t, "auth0|cli-user").groups, "Engineering")
	})
	t.Logf("CLI write -> login on B: %s", d)

	// Key rotation on the shared key store: the new key signs on A after the
	// propagation delay, and B verifies A's token.
	first := a.login(t, "auth0|alice", true)
	if first.tokens == nil || first.tokens.AccessToken == "" {
		t.Fatalf("no minted tokens: %+v", first)
	}
	oldKID := tokenKID(t, first.tokens.AccessToken)
	out, _ = binCLI(t, append(g, "keys", "rotate")...)
	if !strings.Contains(out, "as next") {
		t.Fatalf("keys rotate: %s", out)
	}
	var tok string
	eventually(t, 10*time.Second, "A to sign with the rotated key", func() bool {
		r := a.login(t, "auth0|alice", true)
		tok = r.tokens.AccessToken
		return tokenKID(t, tok) != oldKID
	})
	newKID := tokenKID(t, tok)
	if ans := b.introspect(t, tok); ans["active"] != true || ans["sub"] != "auth0|alice" {
		t.Fatalf("B introspects A's token signed with %s: %v", newKID, ans)
	}
	if ans := b.introspect(t, first.tokens.AccessToken); ans["active"] != true {
		t.Fatalf("B introspects A's token of the retired key %s: %v", oldKID, ans)
	}
	out, _ = binCLI(t, append(g, "token", "verify", tok)...)
	if !strings.Contains(out, `"sub": "auth0|alice"`) {
		t.Fatalf("token verify with the shared keys: %s", out)
	}
	t.Logf("rotated %s -> %s: minted on A, active on B", oldKID, newKID)

	// The revocation list is shared too: revoked on A, inactive on B.
	a.revoke(t, tok)
	if ans := b.introspect(t, tok); len(ans) != 1 || ans["active"] != false {
		t.Fatalf("B introspects a token revoked on A: %v, want exactly {\"active\":false}", ans)
	}

	// The cache's Redis dies: logins keep succeeding on both nodes from the
	// store, /readyz says degraded, and a write on A still reaches B (by the
	// revision poll, 500ms here, instead of pub/sub).
	cacheSrv.Kill()
	for _, n := range []*node{a, b} {
		for range 20 {
			n.mustLogin(t, "auth0|alice")
		}
		eventually(t, 10*time.Second, n.name+" /readyz degraded", func() bool {
			st, body := n.ready(t)
			deg, _ := body["degraded"].(map[string]any)
			return st == http.StatusOK && body["status"] == "degraded" && deg["policy_cache"] != nil
		})
	}
	if r := b.mustLogin(t, "auth0|outage-user"); len(r.groups) != 0 { // now in B's near cache
		t.Fatalf("outage-user before: %+v", r)
	}
	a.admin(t, key, http.MethodPatch, "/api/groups/g-eng/members", []string{"auth0|outage-user"})
	if !slices.Contains(a.mustLogin(t, "auth0|outage-user").groups, "Engineering") {
		t.Fatal("A's write is not visible to A's next login while the cache's Redis is down")
	}
	d = eventually(t, 5*time.Second, "B to see A's write while the cache's Redis is down", func() bool {
		return slices.Contains(b.mustLogin(t, "auth0|outage-user").groups, "Engineering")
	})
	t.Logf("cache Redis down: write on A -> login on B after %s (revision poll)", d)

	cacheSrv.Restart()
	for _, n := range []*node{a, b} {
		d := eventually(t, 15*time.Second, n.name+" /readyz ready after the cache's Redis came back", func() bool {
			st, body := n.ready(t)
			return st == http.StatusOK && body["status"] == "ready"
		})
		t.Logf("node %s: cache resumed %s after the restart", n.name, d)
	}
	b.mustLogin(t, "auth0|after-outage")
	a.admin(t, key, http.MethodPatch, "/api/groups/g-eng/members", []string{"auth0|after-outage"})
	eventually(t, 10*time.Second, "B to see A's write through pub/sub again", func() bool {
		return slices.Contains(b.mustLogin(t, "auth0|after-outage").groups, "Engineering")
	})

	// The store's Redis dies: fail_closed denies logins (no stale answer)
	// and /readyz says unavailable; when it is back, both nodes recover.
	storeSrv.Kill()
	for _, n := range []*node{a, b} {
		eventually(t, 10*time.Second, n.name+" /readyz unavailable", func() bool {
			st, body := n.ready(t)
			return st == http.StatusServiceUnavailable && body["status"] == "unavailable"
		})
		if r := n.login(t, "auth0|nobody-cached", false); r.allowed {
			t.Fatalf("login on %s allowed with the store down (fail_closed): %+v", n.name, r)
		}
	}
	storeSrv.Restart()
	for _, n := range []*node{a, b} {
		eventually(t, 15*time.Second, n.name+" /readyz ready after the store came back", func() bool {
			st, _ := n.ready(t)
			return st == http.StatusOK
		})
		if r := n.mustLogin(t, "auth0|after-outage"); !slices.Contains(r.groups, "Engineering") {
			t.Fatalf("after the store's restart on %s: %+v", n.name, r)
		}
	}

	if _, err := os.Stat(unused); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the Redis backend used the data dir %s: %v", unused, err)
	}
}

// TestFileStoreWithRedisCache: the file store (data dir) with the policy
// cache on Redis (the redis section, store.backend file). A hung Redis
// costs a login at most the cache's op_timeout; killing Redis never fails a
// login: /readyz says degraded, the failures are counted, a write is visible
// to the next login, and the cache resumes by itself.
func TestFileStoreWithRedisCache(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs claimsmith and redis-server; skipped with -short")
	}
	srv := redistest.Start(t, redistest.Options{})
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	cfg := filepath.Join(tmp, "claimsmith.yaml")
	if err := os.WriteFile(cfg, []byte(nodeConfig(fmt.Sprintf("redis:\n  addrs: [%s]\ncache:\n  op_timeout: 20ms\n", srv.Addr()))), 0o600); err != nil {
		t.Fatal(err)
	}
	docPath := filepath.Join(tmp, "authz.json")
	if err := os.WriteFile(docPath, []byte(twoNodeDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	g := []string{"--config", cfg, "--data-dir", data}
	out, _ := binCLI(t, append(g, "import", docPath)...)
	if !strings.Contains(out, "store "+data) {
		t.Fatalf("import: %s", out)
	}
	out, _ = binCLI(t, append(g, "admin-key", "create", "--name", "ops", "--scopes", "all")...)
	key := strings.TrimSpace(out)
	if _, err := os.Stat(filepath.Join(data, "admin", "keys.json")); err != nil {
		t.Fatalf("file backend: admin keys not in the data dir: %v", err)
	}
	n := startNode(t, "file", g...)
	eventually(t, 10*time.Second, "ready", func() bool { st, body := n.ready(t); return st == http.StatusOK && body["status"] == "ready" })
	n.mustLogin(t, "auth0|alice")
	n.mustLogin(t, "auth0|alice") // a near hit
	// A hung Redis (SIGSTOP: connections open, no answers): every cache call
	// gives up after op_timeout, so logins stay within the authorization
	// rule's 100ms budget and are allowed.
	srv.Freeze()
	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		if r := n.mustLogin(t, fmt.Sprintf("auth0|frozen-%d", i)); r.status != http.StatusOK {
			t.Fatalf("login with Redis frozen: %+v", r)
		}
		slowest = max(slowest, time.Since(start))
	}
	srv.Thaw()
	t.Logf("Redis frozen: 20 cold logins allowed, slowest %s", slowest)
	srv.Kill()
	for i := range 50 {
		if r := n.mustLogin(t, "auth0|alice"); !slices.Equal(r.groups, []string{"Engineering"}) {
			t.Fatalf("login %d with Redis down: %+v", i, r)
		}
		n.mustLogin(t, fmt.Sprintf("auth0|cold-%d", i)) // near misses: the store answers
	}
	eventually(t, 10*time.Second, "/readyz degraded", func() bool {
		st, body := n.ready(t)
		return st == http.StatusOK && body["status"] == "degraded"
	})
	n.admin(t, key, http.MethodPatch, "/api/groups/g-eng/members", []string{"auth0|cold-1"})
	if r := n.mustLogin(t, "auth0|cold-1"); !slices.Contains(r.groups, "Engineering") {
		t.Fatalf("a write while Redis is down is not visible to the next login: %+v", r)
	}
	metrics := func() string { return n.metrics(t) }
	m := metrics()
	if !strings.Contains(m, "claimsmith_policy_cache_degraded 1") || !strings.Contains(m, "claimsmith_policy_cache_errors_total{") {
		t.Fatalf("metrics during the outage lack the degraded gauge or errors:\n%s", grepLines(m, "claimsmith_policy_cache"))
	}
	srv.Restart()
	d := eventually(t, 15*time.Second, "/readyz ready after Redis came back", func() bool {
		st, body := n.ready(t)
		return st == http.StatusOK && body["status"] == "ready"
	})
	t.Logf("cache resumed %s after Redis restarted", d)
	n.mustLogin(t, "auth0|resumed")
	n.mustLogin(t, "auth0|resumed")
	m = metrics()
	if !strings.Contains(m, "claimsmith_policy_cache_degraded 0") {
		t.Fatalf("metrics after the outage:\n%s", grepLines(m, "claimsmith_policy_cache"))
	}
	t.Logf("%s", grepLines(m, "claimsmith_policy_cache_lookups_total"))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRedisBackendCommands runs the CLI in-process against the Redis store:
// import (bulk loader, progress), export round trip, policy, users, the admin
// CLI writing directly, admin keys and signing keys in Redis, token mint and
// verify; nothing touches the data dir.
func TestRedisBackendCommands(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	t.Setenv("NODE_TEST_RS_SECRET", nodeRS)
	tmp := t.TempDir()
	unused := filepath.Join(tmp, "unused")
	cfg := filepath.Join(tmp, "c.yaml")
	if err := os.WriteFile(cfg, []byte(nodeConfig(fmt.Sprintf("store:\n  backend: redis\nredis:\n  addrs: [%s]\n", srv.Addr()))), 0o600); err != nil {
		t.Fatal(err)
	}
	g := []string{"--config", cfg, "--data-dir", unused}
	out := mustCLI(t, "", append(g, "import", sampleFile)...)
	if !strings.Contains(out, "9 groups, 9 roles, 8 permissions") || !strings.Contains(out, "store redis "+srv.Addr()+" at revision 1") {
		t.Fatalf("import: %s", out)
	}
	sample, _ := os.ReadFile(sampleFile)
	if exp := mustCLI(t, "", append(g, "export")...); exp != string(sample) {
		t.Fatalf("export from Redis differs from the imported sample:\n%s", exp)
	}
	// The same import through stdin: the round trip is exact.
	mustCLI(t, string(sample), append(g, "import", "-")...)
	if exp := mustCLI(t, "", append(g, "export")...); exp != string(sample) {
		t.Fatal("export after re-import differs")
	}
	// The command waited for the first import's keys to be deleted.
	if n, err := srv.Do("EVAL", "return #redis.call('KEYS', 'claimsmith:{authz}:1:*')", "0"); err != nil || n != "0" {
		t.Fatalf("%s keys of the replaced generation remain (%v)", n, err)
	}
	var doc authz.Document
	if err := json.Unmarshal(sample, &doc); err != nil {
		t.Fatal(err)
	}
	g0 := doc.Groups[0]
	mustCLI(t, "", append(g, "groups", "add-members", g0.ID, "auth0|redis-cli-user")...)
	out = mustCLI(t, "", append(g, "groups", "of-user", "auth0|redis-cli-user")...)
	if !strings.Contains(out, g0.Name) {
		t.Fatalf("of-user after a direct write to Redis: %s", out)
	}
	client := ""
	for _, r := range doc.Roles {
		if slices.Contains(g0.Roles, r.ID) {
			client = r.ApplicationID
		}
	}
	if client != "" {
		out = mustCLI(t, "", append(g, "policy", "--user", "auth0|redis-cli-user", "--client", client)...)
		if !strings.Contains(out, g0.Name) {
			t.Fatalf("policy: %s", out)
		}
	}
	if out = mustCLI(t, "", append(g, "users", "get", "auth0|redis-cli-user")...); !strings.Contains(out, `"app_metadata": {}`) {
		t.Fatalf("users get: %s", out)
	}

	// Admin keys in Redis: created, listed, revoked.
	secret := strings.TrimSpace(mustCLI(t, "", append(g, "admin-key", "create", "--name", "ops", "--scopes", "read")...))
	if secret == "" || !strings.Contains(mustCLI(t, "", append(g, "admin-key", "list")...), "ops") {
		t.Fatal("admin-key create/list against Redis")
	}
	if n, err := srv.Do("HLEN", "claimsmith:{admin}:keys"); err != nil || n != "1" {
		t.Fatalf("admin keys hash in Redis: %q %v", n, err)
	}
	mustCLI(t, "", append(g, "admin-key", "revoke", "ops")...)

	// Signing keys in Redis: the first key, a rotation, a token that verifies.
	mustCLI(t, "", append(g, "keys", "rotate")...)
	mustCLI(t, "", append(g, "keys", "rotate")...)
	var infos []map[string]any
	if err := json.Unmarshal([]byte(mustCLI(t, "", append(g, "keys", "list", "--json")...)), &infos); err != nil || len(infos) != 2 {
		t.Fatalf("keys list: %v %v", infos, err)
	}
	if n, err := srv.Do("HLEN", "claimsmith:{keys}:signing"); err != nil || n != "2" {
		t.Fatalf("signing keys hash in Redis: %q %v", n, err)
	}
	// Both rotations are audited in the shared audit log in Redis.
	if rec, err := srv.Do("LINDEX", "claimsmith:{admin}:audit", "0"); err != nil || !strings.Contains(rec, `"action":"keys.rotate"`) ||
		!strings.Contains(rec, `"retires":"`+fmt.Sprint(infos[0]["kid"])+`"`) {
		t.Fatalf("newest audit record in Redis after keys rotate: %s %v", rec, err)
	}
	var minted struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "", append(g, "token", "mint", "--user", "auth0|redis-cli-user", "--client", "portal")...)), &minted); err != nil || minted.AccessToken == "" {
		t.Fatalf("token mint: %v", err)
	}
	if out := mustCLI(t, "", append(g, "token", "verify", minted.AccessToken)...); !strings.Contains(out, "auth0|redis-cli-user") {
		t.Fatalf("token verify: %s", out)
	}

	// A large import shows the bulk loader's progress (not a terminal: lines).
	big := filepath.Join(tmp, "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := authz.Encode(f, authzgen.Generate(authzgen.BenchSpec(5000)), authz.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The binary imports it: in-process under -race it took seconds more.
	out, errs, code := runBinary(t, buildClaimsmith(t), append(g, "import", "--replace", big)...)
	if code != 0 || !strings.Contains(errs, "commands written") || !strings.Contains(errs, "100%") {
		t.Fatalf("big import: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("bulk import progress:\n%s", errs)

	if _, err := os.Stat(unused); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the Redis backend created the data dir: %v", err)
	}
}

// TestRedisUnreachableNamesTheConfig: a command against a Redis nobody
// listens on fails at once, naming the file, line and addresses.
func TestRedisUnreachableNamesTheConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	addr := freeAddr(t) // closed again: nothing listens there
	if err := os.WriteFile(cfg, []byte("store:\n  backend: redis\nredis:\n  addrs: ["+addr+"]\n  dial_timeout: 200ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli(t, "", "--config", cfg, "export")
	want := cfg + ":3: key \"redis\": cannot reach Redis at " + addr
	if code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("exit %d: %s\nwant %s", code, errs, want)
	}
}

// TestServeOnClusterAndSentinel: the same binary and config shape on a
// 3-node Redis Cluster (cluster seeds) and behind Sentinel (the sentinel
// plus master_name, with a password from $CLAIMSMITH_REDIS_PASSWORD): import,
// admin key, two nodes, a write on A seen by B's next login, and a token
// minted on A that B introspects as active.
func TestServeOnClusterAndSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs claimsmith and several redis-server processes; skipped with -short")
	}
	topologies := []struct {
		name  string
		start func(t *testing.T) (redisSection string, env []string)
	}{
		{"cluster", func(t *testing.T) (string, []string) {
			c := redistest.StartCluster(t, 3)
			return fmt.Sprintf("redis:\n  addrs: [%s]\n", strings.Join(c.Addrs(), ", ")), nil
		}},
		{"sentinel", func(t *testing.T) (string, []string) {
			master := redistest.Start(t, redistest.Options{Password: "s3cret-pass"})
			s := redistest.StartSentinel(t, master, "authz-master")
			return fmt.Sprintf("redis:\n  addrs: [%s]\n  master_name: authz-master\n", s.Addr()), []string{"CLAIMSMITH_REDIS_PASSWORD=s3cret-pass"}
		}},
	}
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			redisSection, env := top.start(t)
			for _, e := range env {
				k, v, _ := strings.Cut(e, "=")
				t.Setenv(k, v) // inherited by the commands and nodes
			}
			tmp := t.TempDir()
			cfg := filepath.Join(tmp, "claimsmith.yaml")
			if err := os.WriteFile(cfg, []byte(nodeConfig("store:\n  backend: redis\n"+redisSection)), 0o600); err != nil {
				t.Fatal(err)
			}
			docPath := filepath.Join(tmp, "authz.json")
			if err := os.WriteFile(docPath, []byte(twoNodeDoc), 0o600); err != nil {
				t.Fatal(err)
			}
			g := []string{"--config", cfg, "--data-dir", filepath.Join(tmp, "unused")}
			binCLI(t, append(g, "import", docPath)...)
			out, _ := binCLI(t, append(g, "admin-key", "create", "--name", "ops", "--scopes", "all")...)
			key := strings.TrimSpace(out)
			a := startNode(t, "A", g...)
			b := startNode(t, "B", g...)
			for _, n := range []*node{a, b} {
				eventually(t, 10*time.Second, n.name+" ready", func() bool { st, _ := n.ready(t); return st == http.StatusOK })
			}
			if r := b.mustLogin(t, "auth0|topo-user"); len(r.groups) != 0 {
				t.Fatalf("before: %+v", r)
			}
			a.admin(t, key, http.MethodPatch, "/api/groups/g-eng/members", []string{"auth0|topo-user"})
			d := eventually(t, 10*time.Second, "B to see A's write", func() bool {
				return slices.Contains(b.mustLogin(t, "auth0|topo-user").groups, "Engineering")
			})
			tok := a.login(t, "auth0|topo-user", true).tokens
			if tok == nil {
				t.Fatal("no tokens minted")
			}
			if ans := b.introspect(t, tok.AccessToken); ans["active"] != true {
				t.Fatalf("B introspects A's token: %v", ans)
			}
			t.Logf("%s: write on A -> login on B after %s; A's token active on B", top.name, d)
		})
	}
}
