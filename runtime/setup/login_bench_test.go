package setup

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/token"
	"github.com/claimsmith/claimsmith/runtime/token/tokentest"
)

// The login benchmarks of issue 15 (rows P1/P2 of `make bench`): claimsmith
// as `serve` builds it — Build over the sample config
// (samples/config/claimsmith.yaml: the sample pipeline, the file store in
// the benchmark's temp dir with persist on, metrics, logging at the default
// level into a discarding text handler, the dev secrets `make run` exports)
// and the sample data — against a floor that does only what any login must:
// decode the event, sign two tokens, encode the answer. Both are served
// over real HTTP on loopback with keep-alive clients, in alternating slices
// of one run, so machine noise hits both alike. Each reports claimsmith ÷
// floor by wall time (ratio) and by this process's CPU time (cpu-ratio),
// and the data dir's fsync latency (fsync-µs) measured in the same dir, so
// a reader sees what disk the numbers came from.
//
//	go test ./runtime/setup -run '^$' -bench 'ServeLogin' -benchtime 2s
//
// The memory-store variant (hand-built handler, no persist, no logging) is
// hooks/login's BenchmarkNativeLoginRatio.

// benchLoginEvent is alice logging in to the sample portal (about 1 KiB),
// allowed by every rule of the sample pipeline, with both tokens minted.
var benchLoginEvent = []byte(`{
  "trigger": "post-login",
  "user": {"user_id": "auth0|alice", "email": "alice@example.com", "email_verified": true, "name": "Alice Example",
    "user_metadata": {"theme": "light", "locale": "de-DE"},
    "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0", "user_id": "alice", "is_social": false}]},
  "client": {"client_id": "portal-client", "name": "Example Portal", "metadata": {"required_roles": "user, viewer, editor, admin, support"}},
  "connection": {"id": "con_1", "name": "Username-Password-Authentication", "strategy": "auth0"},
  "request": {"ip": "192.0.2.10", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "hostname": "login.example.com",
    "method": "GET", "query": {"scope": "openid profile email", "response_type": "code"},
    "geoip": {"country_code": "NL", "country_name": "Netherlands"}},
  "transaction": {"requested_scopes": ["openid", "profile", "email"], "audience": "https://api.example.com/", "protocol": "oidc-basic-profile"},
  "mint": true
}`)

const benchDevBearer = "dev-native-bearer-key"

// benchDevEnv is what `make run` exports (Makefile DEV_ENV) over the
// process's environment (GOGC reaches serve's GC setting).
func benchDevEnv(k string) string {
	if v, ok := benchDevSecrets()[k]; ok {
		return v
	}
	return os.Getenv(k)
}

func benchDevSecrets() map[string]string {
	return map[string]string{
		"CLAIMSMITH_DEV_BEARER_KEY":        benchDevBearer,
		"CLAIMSMITH_DEV_WEBHOOK_SECRET":    "whsec_Y2xhaW1zbWl0aC1kZXYtd2ViaG9vay1zZWNyZXQtMzJi",
		"CLAIMSMITH_DEV_HYDRA_KEY":         "dev-hydra-key",
		"CLAIMSMITH_DEV_EXTENSION_KEY":     "dev-extension-key",
		"CLAIMSMITH_DEV_INTROSPECT_SECRET": "dev-introspection-secret",
	}
}

// buildSampleServer builds what `make run` serves, with alg as the signing
// algorithm, on a fresh data dir holding the sample data. It returns the
// server and the data dir.
func buildSampleServer(b *testing.B, alg token.Algorithm) (*Server, string) {
	b.Helper()
	ctx := context.Background()
	cfg, err := Load(filepath.Join("..", "..", "samples", "config", "claimsmith.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	if cfg.Store.backendName() != BackendFile {
		b.Fatalf("the sample config's store is %q, the benchmark measures the file store", cfg.Store.backendName())
	}
	cfg.Tokens.Algorithm = string(alg)
	dir := b.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "..", "samples", "data", "claimsmith-full.json"))
	if err != nil {
		b.Fatal(err)
	}
	doc, err := authz.ParseDocument(raw)
	if err != nil {
		b.Fatal(err)
	}
	env := Env{DataDir: dir, Getenv: benchDevEnv,
		// serve's logger at its default level (info), formatting every
		// line it would print.
		Log: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	bk, err := OpenBackends(cfg, env)
	if err != nil {
		b.Fatal(err)
	}
	st, err := bk.Store(ctx, false)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	_ = bk.Close()
	srv, err := Build(ctx, cfg, Options{Env: env, Overrides: Overrides{Addr: "127.0.0.1:0"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	return srv, dir
}

// serveOnLoopback serves srv on a loopback port until the benchmark ends.
func serveOnLoopback(b *testing.B, srv *Server) string {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// benchLoginFloor decodes the event, signs two tokens with alg (a P-256
// key, or RSA 2048 as claimsmith's default) of about the size claimsmith
// mints for alice, and encodes the answer; nothing else.
func benchLoginFloor(b *testing.B, alg token.Algorithm) http.Handler {
	b.Helper()
	signer := tokentest.FloorSigner(b, alg)
	idClaims := []byte(`{"iss":"http://127.0.0.1:8080","sub":"auth0|alice","aud":"portal-client","exp":1795463887,"iat":1795460287,"auth_time":1795460287,"https://example.com/groups":["Employees","Engineering"],"https://example.com/roles":["user","editor"],"https://example.com/plan":"gold"}`)
	atClaims := []byte(`{"iss":"http://127.0.0.1:8080","sub":"auth0|alice","aud":"https://api.example.com/","client_id":"portal-client","exp":1795463887,"iat":1795460287,"jti":"0123456789abcdefghij","scope":"openid profile email","https://example.com/roles":["user","editor"],"https://example.com/permissions":["read:docs","write:docs"],"https://example.com/plan":"gold"}`)
	type tokens struct {
		IDToken     string `json:"id_token"`
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	type answer struct {
		Decision runtime.Decision `json:"decision"`
		Tokens   tokens           `json:"tokens"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var ev runtime.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		id, err1 := signer.Sign(idClaims)
		at, err2 := signer.Sign(atClaims)
		if err1 != nil || err2 != nil {
			http.Error(w, "sign", 500)
			return
		}
		ids, _ := id.CompactSerialize()
		ats, _ := at.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer{Decision: runtime.Decision{Allowed: true}, Tokens: tokens{IDToken: ids, AccessToken: ats, TokenType: "Bearer"}})
	})
}

// benchLogin is one keep-alive client posting the event.
type benchLogin struct {
	url    string
	client *http.Client
}

func newBenchLogin(base string) *benchLogin {
	tr := &http.Transport{MaxIdleConns: 8, MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}
	return &benchLogin{url: base + "/hooks/v1/post-login", client: &http.Client{Transport: tr}}
}

func loginRequest(url string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(benchLoginEvent))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+benchDevBearer)
	return req
}

// login posts the event and checks the answer carries an access token
// signed with alg.
func (c *benchLogin) login(b *testing.B, alg token.Algorithm) {
	resp, err := c.client.Do(loginRequest(c.url))
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkLoginAnswer(b, resp.StatusCode, body, alg, false)
}

// checkLoginAnswer fails unless the answer is 200 with an access token;
// with parse, also unless the token is signed with alg.
func checkLoginAnswer(b *testing.B, status int, body []byte, alg token.Algorithm, parse bool) {
	if status != 200 || !bytes.Contains(body, []byte(`"access_token":"ey`)) {
		b.Fatalf("login: %d %s", status, body)
	}
	if !parse {
		return
	}
	var ans struct {
		Tokens struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		b.Fatal(err)
	}
	jws, err := jose.ParseSigned(ans.Tokens.AccessToken, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		b.Fatal(err)
	}
	if got := jws.Signatures[0].Header.Algorithm; got != string(alg) {
		b.Fatalf("signed with %s, want %s", got, alg)
	}
}

// BenchmarkServeLoginRatio is P1 (ES256) and P2 (RS256): claimsmith as serve
// builds it ÷ the floor, over HTTP.
func BenchmarkServeLoginRatio(b *testing.B) {
	for _, alg := range []token.Algorithm{token.ES256, token.RS256} {
		b.Run(string(alg), func(b *testing.B) {
			srv, dir := buildSampleServer(b, alg)
			fsync := measureFsync(b, dir)
			cs := newBenchLogin(serveOnLoopback(b, srv))
			floor := httptest.NewServer(benchLoginFloor(b, alg))
			defer floor.Close()
			fl := newBenchLogin(floor.URL)
			// Warm: connections, caches, pools, and the first login's
			// persisted authorization (every later patch is a no-op).
			for range 3 {
				fl.login(b, alg)
				cs.login(b, alg)
			}
			resp, err := cs.client.Do(loginRequest(cs.url))
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkLoginAnswer(b, resp.StatusCode, body, alg, true)
			pairedSlices(b, func() { fl.login(b, alg) }, func() { cs.login(b, alg) })
			b.ReportMetric(float64(fsync.Microseconds()), "fsync-µs")
		})
	}
}

// BenchmarkServeLoginHandlerRatio is the same comparison without the
// network: serve's whole handler (mux, metrics, auth, pipeline, persist,
// minting) ÷ the floor handler, both called in process.
func BenchmarkServeLoginHandlerRatio(b *testing.B) {
	for _, alg := range []token.Algorithm{token.ES256, token.RS256} {
		b.Run(string(alg), func(b *testing.B) {
			srv, dir := buildSampleServer(b, alg)
			fsync := measureFsync(b, dir)
			h, floor := srv.Handler(), benchLoginFloor(b, alg)
			call := func(h http.Handler, parse bool) {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, loginRequest("/hooks/v1/post-login"))
				checkLoginAnswer(b, w.Code, w.Body.Bytes(), alg, parse)
			}
			for range 3 {
				call(floor, false)
				call(h, false)
			}
			call(h, true)
			gc0, cyc0 := gcCPU()
			pairedSlices(b, func() { call(floor, false) }, func() { call(h, false) })
			b.ReportMetric(float64(fsync.Microseconds()), "fsync-µs")
			// The GC's cycles per 1,000 logins (both sides) and its mark
			// and pause CPU per login: what server.gogc trades against heap.
			gc1, cyc1 := gcCPU()
			b.ReportMetric(float64(cyc1-cyc0)*1000/float64(2*b.N), "gc-cycles/klogin")
			b.ReportMetric(float64((gc1-gc0).Microseconds())/float64(2*b.N), "gc-cpu-µs/login")
		})
	}
}

// pairedSlices runs b.N of floor and of claimsmith in alternating slices of
// 50 and reports floor-logins/s, claimsmith-logins/s, the wall ratio
// (claimsmith ÷ floor throughput) and the CPU ratio.
func pairedSlices(b *testing.B, floor, cs func()) {
	const slice = 50
	var tf, tc, cf, cc time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += slice {
		n := min(slice, b.N-done)
		t, c := time.Now(), processCPU()
		for range n {
			floor()
		}
		tf += time.Since(t)
		cf += processCPU() - c
		t, c = time.Now(), processCPU()
		for range n {
			cs()
		}
		tc += time.Since(t)
		cc += processCPU() - c
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/tf.Seconds(), "floor-logins/s")
	b.ReportMetric(float64(b.N)/tc.Seconds(), "claimsmith-logins/s")
	b.ReportMetric(tf.Seconds()/tc.Seconds(), "ratio")
	// CPU time (client, server and GC of this process) is disturbed less
	// by other load on the machine than wall time.
	b.ReportMetric(float64(cf)/float64(cc), "cpu-ratio")
}

// measureFsync is the median latency of writing 4 KiB to a file in dir and
// fdatasync'ing it (what one group commit of the profile journal costs).
func measureFsync(b *testing.B, dir string) time.Duration {
	b.Helper()
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var lat []time.Duration
	for range 20 {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	return lat[len(lat)/2]
}

// gcCPU is the CPU time the garbage collector's mark work has used
// (assists and dedicated workers; idle workers only use otherwise idle
// CPUs and are left out) and pauses, and the GC cycles so far.
func gcCPU() (gc time.Duration, cycles uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/mark/assist:cpu-seconds"}, {Name: "/cpu/classes/gc/mark/dedicated:cpu-seconds"},
		{Name: "/cpu/classes/gc/pause:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	for _, v := range s[:3] {
		if v.Value.Kind() == metrics.KindFloat64 {
			gc += time.Duration(v.Value.Float64() * float64(time.Second))
		}
	}
	if s[3].Value.Kind() == metrics.KindUint64 {
		cycles = s[3].Value.Uint64()
	}
	return gc, cycles
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
