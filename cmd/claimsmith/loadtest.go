package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/cmd/claimsmith/internal/loadtest"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
)

const loadtestHelp = `Usage: claimsmith loadtest [flags]

Drives a running 'claimsmith serve' over keep-alive HTTP, open-loop at a
target rate (latency is measured from each request's scheduled start, so a
slow server cannot hide its queue), with a realistic mix:

  post-login   native post-login for users spread over the model (allowed),
               minting both tokens (mint: true), as an IdP without its own
               token service asks
  denied       native post-login for users lacking the client's required_roles
  hydra        the Ory Hydra token hook dialect
  introspect   RFC 7662 introspection of access tokens minted in a warm-up

Users, clients and which logins are denied are taken from --data (the same
file the server imported); a larger model: 'claimsmith loadtest --generate
100000 --data model.json', import it, serve, then load-test with it.

It prints throughput, p50/p90/p99/max per kind, errors and statuses, and
writes report.txt and latency.svg (latency over time) to --out. The report
names the machine (CPU model, CPUs, load average), the server's config and
data dir (--config, --data-dir: labels, and the dir whose fsync latency is
measured), and whether the generator was pinned (--cpu).

With --find-max it searches the highest rate meeting the SLO (p99 ≤
--max-p99, default 2ms, and errors + drops < 1%): doubling from 100 req/s,
then bisecting; each rate is run until two runs in a row agree (at most
--repeats), and the report lists every probe with its p99 spread. The
search is monotonic: no rate above a failed one or below a passed one is
tried. It then runs --duration at half of the max and reports that p99.
If no probed rate meets the SLO, the report (and --readme) say so, with the
probes, and it fails.

With --readme FILE it also rewrites FILE's load test block (the lines
between its "loadtest-report: begin" and "loadtest-report: end" markers)
with the command, the result, the SVG and the whole report, noting a busy
machine; make loadtest does this for the README's Performance section.

Pin the generator to a core the server does not use (make loadtest does,
with the server of make run pinned to CPU 0): --cpu 1. Pinned, it first
spins a thread for a second on each other CPU and reports the time that
thread lost in stalls: on a VM whose host runs other work on the vCPU,
no server's p99 can be below those stalls.

The generator is one thread with an epoll loop speaking HTTP/1.1 on
keep-alive connections (plain http on Linux; https and other systems use
net/http): it sends on schedule to within the kernel's wake-up, reads
every answer as it arrives, and costs a few microseconds of CPU per
request; it never spins, since a busy vCPU slows its sibling on a VM.

Defaults match 'make run' (samples/config/claimsmith.yaml and the dev secrets
the Makefile exports).

Flags:
`

func runLoadtest(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "base URL of the running server")
	data := fs.String("data", "samples/data/claimsmith-full.json", "model the server serves (extension export, optionally with the claimsmith section)")
	generate := fs.Int("generate", 0, "write a generated model with this many users to --data and exit")
	bearer := fs.String("bearer", envOr("CLAIMSMITH_LOADTEST_BEARER", "dev-native-bearer-key"), "bearer key of a native caller allowed to mint ($CLAIMSMITH_LOADTEST_BEARER)")
	hydraKey := fs.String("hydra-key", envOr("CLAIMSMITH_LOADTEST_HYDRA_KEY", "dev-hydra-key"), "value of the Hydra hook's API key header ($CLAIMSMITH_LOADTEST_HYDRA_KEY)")
	hydraHeader := fs.String("hydra-header", "Authorization", "header carrying the Hydra hook's API key")
	introID := fs.String("introspect-client", "resource-server", "introspection client id")
	introSecret := fs.String("introspect-secret", envOr("CLAIMSMITH_LOADTEST_INTROSPECT_SECRET", "dev-introspection-secret"), "introspection client secret ($CLAIMSMITH_LOADTEST_INTROSPECT_SECRET)")
	mixFlag := fs.String("mix", "post-login=60,denied=10,hydra=20,introspect=10", "weights of the request kinds")
	rate := fs.Float64("rate", 200, "requests per second (without --find-max)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send at the final rate")
	findMax := fs.Bool("find-max", false, "search the max sustainable rate, then run at half of it")
	maxP99 := fs.Duration("max-p99", 2*time.Millisecond, "the SLO: p99 above which a rate is not sustainable (--find-max)")
	step := fs.Duration("step", 2*time.Second, "duration of each run of a probe of --find-max")
	repeats := fs.Int("repeats", 5, "most runs of one probed rate (it stops when two in a row agree)")
	cpu := fs.Int("cpu", -1, "pin the generator to this CPU (sched_setaffinity; -1: not pinned)")
	cfgLabel := fs.String("config", "samples/config/claimsmith.yaml", "the server's config, named in the report")
	dataDir := fs.String("data-dir", "data", "the server's data dir: named in the report, its fsync latency measured")
	conc := fs.Int("concurrency", 256, "requests in flight at most (more are dropped and counted)")
	out := fs.String("out", "loadtest-report", "folder for report.txt and latency.svg")
	readme := fs.String("readme", "", "also rewrite this markdown file's load test block (between its loadtest-report markers) with the report, the SVG and this command")
	fs.Usage = func() { fmt.Fprint(fs.Output(), loadtestHelp); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *generate > 0 {
		return writeGeneratedModel(a, *data, *generate)
	}
	if *cpu >= 0 {
		if err := loadtest.PinToCPU(*cpu); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	host := loadtest.DescribeMachine(*cpu)
	machine := describeRun(host, *cfgLabel, *dataDir) + describeStalls(*cpu, host.CPUs)
	weights, err := parseMix(*mixFlag)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	raw, err := os.ReadFile(*data)
	if err != nil {
		return err
	}
	doc, err := authz.ParseDocument(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", *data, err)
	}
	lt := &loadPlan{base: strings.TrimRight(*base, "/"), doc: doc, bearer: *bearer, hydraKey: *hydraKey, hydraHeader: *hydraHeader,
		introID: *introID, introSecret: *introSecret, client: &http.Client{Timeout: 10 * time.Second}}
	sets, err := lt.prepare(ctx, weights)
	if err != nil {
		return err
	}
	mix, err := loadtest.NewWeighted(weights, sets)
	if err != nil {
		return err
	}
	opts := loadtest.Options{BaseURL: lt.base, Rate: *rate, Duration: *duration, Concurrency: *conc, Seed: 1}
	var header strings.Builder
	header.WriteString(machine)
	var (
		rep    *loadtest.Report
		failed error // --find-max found no rate meeting the SLO
	)
	if *findMax {
		search, err := loadtest.FindMax(ctx, opts, mix, loadtest.SearchOptions{Start: 100, Step: *step, MaxP99: *maxP99, Repeats: *repeats,
			Progress: func(r *loadtest.Report) {
				fmt.Fprintf(a.stdout, "probe %6.0f req/s: ok %6.0f/s p99 %-9s errors %d dropped %d healthy=%v\n",
					r.TargetRate, r.Throughput, r.All.P99, r.Errors, r.Dropped, r.Healthy(*maxP99))
			}})
		if err != nil {
			return err
		}
		search.WriteText(&header, *maxP99)
		if search.Max == 0 {
			// Still a result: the report (and the README block) say
			// so, with the first probe's last run as the plot.
			failed = fmt.Errorf("no probed rate met p99 ≤ %s with errors+drops < 1%% (from 100 req/s): is the server up, are the credentials right, is the machine busy?", *maxP99)
			fmt.Fprintf(&header, "no probed rate met the SLO (p99 ≤ %s, errors+drops < 1%%); below, the last run at %.0f req/s\n", *maxP99, search.Probes[0].Rate)
			rep, opts.Rate = search.Probes[0].Report, search.Probes[0].Rate
		} else {
			fmt.Fprintf(&header, "max rate meeting the SLO %.0f req/s (p99 ≤ %s, errors+drops < 1%%); final run at half: %.0f req/s\n", search.Max, *maxP99, search.Max/2)
			opts.Rate = search.Max / 2
		}
	}
	if rep == nil {
		if rep, err = loadtest.Run(ctx, opts, mix); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var text strings.Builder
	text.WriteString(header.String())
	rep.WriteText(&text)
	fmt.Fprint(a.stdout, text.String())
	if err := os.WriteFile(filepath.Join(*out, "report.txt"), []byte(text.String()), 0o644); err != nil {
		return err
	}
	svg, err := os.Create(filepath.Join(*out, "latency.svg"))
	if err != nil {
		return err
	}
	title := fmt.Sprintf("claimsmith loadtest — %s, %.0f req/s", lt.base, opts.Rate)
	if err := rep.WriteSVG(svg, title); err != nil {
		svg.Close()
		return err
	}
	if err := svg.Close(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "wrote %s and %s\n", filepath.Join(*out, "report.txt"), filepath.Join(*out, "latency.svg"))
	if *readme != "" {
		summary := fmt.Sprintf("at %.0f req/s", opts.Rate)
		switch {
		case failed != nil:
			summary = fmt.Sprintf("no probed rate met p99 ≤ %s (from 100 req/s); at %.0f req/s", *maxP99, opts.Rate)
		case *findMax:
			summary = fmt.Sprintf("max %.0f req/s meeting p99 ≤ %s; at half of it, %.0f req/s", opts.Rate*2, *maxP99, opts.Rate)
		}
		note := ""
		if host.Busy() {
			note = fmt.Sprintf("The machine was busy (load average %s on %d CPUs before the run): these numbers describe that machine, not a quiet one.", host.Load, host.CPUs)
		}
		if err := updateReadme(*readme, *out, args, *mixFlag, summary, note, rep, text.String(), time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "updated the load test block of %s\n", *readme)
	}
	if failed != nil {
		return failed
	}
	if rep.Errors > 0 || rep.Dropped > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d errors and %d dropped requests", rep.Errors, rep.Dropped)}
	}
	return nil
}

// updateReadme rewrites the load test block of the markdown file path: the
// command that made the report, the result in one line, the SVG (linked
// relative to the file) and the whole report.
func updateReadme(path, outDir string, args []string, mix, summary, note string, rep *loadtest.Report, text string, when time.Time) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	svg, err := filepath.Rel(filepath.Dir(path), filepath.Join(outDir, "latency.svg"))
	if err != nil {
		return err
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\|&;<>()*?[]#~") {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	post := rep.ByKind["post-login"]
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s by `claimsmith loadtest %s` against `make run`; the mix %s:\n\n",
		when.UTC().Format("2006-01-02 15:04 UTC"), strings.Join(quoted, " "), mix)
	fmt.Fprintf(&b, "**%s: p50 %s, p99 %s (post-login with minting: p99 %s), %d errors, %d dropped.**",
		summary, fmtDuration(rep.All.P50), fmtDuration(rep.All.P99), fmtDuration(post.P99), rep.Errors, rep.Dropped)
	if note != "" {
		b.WriteString(" " + note)
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "![latency over time at %.0f req/s: p50, p99 and max](%s)\n\n", rep.TargetRate, filepath.ToSlash(svg))
	fmt.Fprintf(&b, "```text\n%s```\n", text)
	updated, err := loadtest.ReplaceReadmeBlock(doc, b.String())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, updated, 0o644)
}

func fmtDuration(d time.Duration) string {
	if d >= time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// describeRun is the report's first lines: the machine, the server's config
// and data dir, and the data dir's fsync latency (what a login that changes
// a profile waits for with store.file.durability sync).
func describeRun(m loadtest.Machine, config, dataDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "machine: %s\n", m)
	fmt.Fprintf(&b, "server: config %s, data dir %s", config, dataDir)
	if st, err := os.Stat(dataDir); err == nil && st.IsDir() {
		if d, err := loadtest.FsyncLatency(dataDir, 20); err == nil {
			fmt.Fprintf(&b, " (fdatasync of 4 KiB: median %s)", d.Round(time.Microsecond))
		} else {
			fmt.Fprintf(&b, " (fsync latency not measured: %v)", err)
		}
	} else {
		b.WriteString(" (not found here: fsync latency not measured)")
	}
	b.WriteString("\n")
	return b.String()
}

// describeStalls measures, before the load, how much of each CPU other
// than the generator's a spinning thread gets (a second each): on a VM the
// host's other work shows as stalls the guest cannot account for, and the
// server's p99 cannot be below them. Only with a pinned generator (the
// server has the other CPUs).
func describeStalls(genCPU, cpus int) string {
	if genCPU < 0 {
		return ""
	}
	var b strings.Builder
	for cpu := range cpus {
		if cpu == genCPU {
			continue
		}
		s, err := loadtest.MeasureStalls(cpu, time.Second)
		if err != nil {
			fmt.Fprintf(&b, "stalls: CPU %d not measured: %v\n", cpu, err)
			continue
		}
		fmt.Fprintf(&b, "stalls before the run (a thread spinning 1s on the server's CPU): %s\n", s)
	}
	return b.String()
}

func parseMix(s string) (map[string]int, error) {
	known := []string{"post-login", "denied", "hydra", "introspect"}
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("--mix: %q is not kind=weight", part)
		}
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("--mix: unknown kind %q (kinds: %s)", k, strings.Join(known, ", "))
		}
		out[k] = n
	}
	return out, nil
}

// loadPlan prepares the requests of each kind from the model.
type loadPlan struct {
	base, bearer, hydraKey, hydraHeader, introID, introSecret string
	doc                                                       *authz.Document
	client                                                    *http.Client
}

type loginCase struct {
	user, client, clientName, connection, audience string
	denied                                         bool
}

// cases resolves every (user, client) pair locally, exactly as the server
// will, to know which logins the required-roles rule denies.
func (p *loadPlan) cases() []loginCase {
	m := authz.NewModel(p.doc, 1)
	var users []string
	seen := map[string]bool{}
	for _, g := range p.doc.Groups {
		for _, u := range g.Members {
			if !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
	}
	for _, r := range p.doc.Roles {
		for _, u := range r.Users {
			if !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
	}
	var apps []authz.Application
	if p.doc.Claimsmith != nil {
		apps = p.doc.Claimsmith.Applications
	}
	if len(apps) == 0 {
		ids := map[string]bool{}
		for _, r := range p.doc.Roles {
			if r.ApplicationType != authz.TypeResourceServer && !ids[r.ApplicationID] {
				ids[r.ApplicationID] = true
				apps = append(apps, authz.Application{ClientID: r.ApplicationID, Name: r.ApplicationID})
			}
		}
	}
	audience := ""
	for _, r := range p.doc.Roles {
		if r.ApplicationType == authz.TypeResourceServer {
			audience = r.ApplicationID
			break
		}
	}
	const maxUsers = 5000 // enough spread; keeps preparation quick on big models
	if len(users) > maxUsers {
		users = users[:maxUsers]
	}
	var out []loginCase
	for _, u := range users {
		for _, app := range apps {
			pol := m.Resolve(authz.PolicyQuery{UserID: u, ClientID: app.ClientID, Audience: audience})
			denied := false
			if req := strings.TrimSpace(app.Metadata["required_roles"]); req != "" {
				denied = true
				for _, r := range strings.Split(req, ",") {
					if slices.Contains(pol.Roles, strings.TrimSpace(r)) {
						denied = false
						break
					}
				}
			}
			out = append(out, loginCase{user: u, client: app.ClientID, clientName: app.Name, audience: audience, denied: denied})
		}
	}
	return out
}

func (p *loadPlan) event(c loginCase) runtime.Event {
	name := strings.TrimPrefix(c.user, "auth0|")
	return runtime.Event{
		Trigger:    runtime.TriggerPostLogin,
		User:       runtime.User{UserID: c.user, Email: name + "@example.com", EmailVerified: true, Name: name},
		Client:     runtime.Client{ClientID: c.client, Name: c.clientName},
		Connection: runtime.Connection{Name: "Username-Password-Authentication", Strategy: "auth0"},
		Request:    runtime.Request{IP: "203.0.113.7", UserAgent: "claimsmith-loadtest"},
		Transaction: runtime.Transaction{RequestedScopes: []string{"openid", "profile", "email"}, Audience: c.audience,
			Protocol: "oidc-basic-profile"},
	}
}

func (p *loadPlan) native(kind string, c loginCase, mint bool) (*loadtest.Request, error) {
	body, err := json.Marshal(struct {
		runtime.Event
		Mint bool `json:"mint,omitempty"`
	}{p.event(c), mint})
	if err != nil {
		return nil, err
	}
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + p.bearer}}
	return &loadtest.Request{Kind: kind, Method: http.MethodPost, Path: "/hooks/v1/post-login", Header: h, Body: body, Expect: []int{200}}, nil
}

func (p *loadPlan) hydra(c loginCase) (*loadtest.Request, error) {
	sid := randomHex(8)
	body, err := json.Marshal(map[string]any{
		"session": map[string]any{
			"id_token": map[string]any{
				"id_token_claims": map[string]any{"sub": c.user, "aud": []string{c.client}, "ext": map[string]any{"sid": sid, "email": strings.TrimPrefix(c.user, "auth0|") + "@example.com", "email_verified": true},
					"exp": "0001-01-01T00:00:00Z", "iat": "0001-01-01T00:00:00Z", "auth_time": "0001-01-01T00:00:00Z", "rat": "0001-01-01T00:00:00Z"},
				"headers": map[string]any{"extra": map[string]any{}}, "username": "", "subject": c.user,
			},
			"extra": map[string]any{}, "client_id": c.client, "consent_challenge": randomHex(16),
			"exclude_not_before_claim": false, "allowed_top_level_claims": []string{}, "mirror_top_level_claims": true,
		},
		"request": map[string]any{"client_id": c.client, "requested_scopes": []string{"openid", "offline"}, "granted_scopes": []string{},
			"granted_audience": []string{}, "grant_types": []string{"authorization_code"}, "payload": map[string]any{}},
	})
	if err != nil {
		return nil, err
	}
	h := http.Header{"Content-Type": {"application/json"}, p.hydraHeader: {p.hydraKey}}
	// The login/consent app put the user's email facts into the session
	// (ext), as the require-verified-email rule needs; a login the model
	// denies must come back 403, any other 200 (claims) or 204 (none).
	expect := []int{200, 204}
	if c.denied {
		expect = []int{403}
	}
	return &loadtest.Request{Kind: "hydra", Method: http.MethodPost, Path: "/hooks/hydra/token", Header: h, Body: body, Expect: expect}, nil
}

// prepare builds the request sets of the kinds with a weight; introspection
// needs access tokens, minted by a warm-up of native logins.
func (p *loadPlan) prepare(ctx context.Context, weights map[string]int) (map[string][]*loadtest.Request, error) {
	cases := p.cases()
	sets := map[string][]*loadtest.Request{}
	var allowed []loginCase
	for _, c := range cases {
		kind := "post-login"
		if c.denied {
			kind = "denied"
		} else {
			allowed = append(allowed, c)
		}
		if weights[kind] > 0 {
			// Allowed logins mint both tokens (the login's full cost); a
			// denied one mints nothing whatever it asks.
			r, err := p.native(kind, c, true)
			if err != nil {
				return nil, err
			}
			sets[kind] = append(sets[kind], r)
		}
		if weights["hydra"] > 0 {
			r, err := p.hydra(c)
			if err != nil {
				return nil, err
			}
			sets["hydra"] = append(sets["hydra"], r)
		}
	}
	for k, w := range weights {
		if w > 0 && len(sets[k]) == 0 && k != "introspect" {
			return nil, fmt.Errorf("the model in --data has no %s logins: give that kind weight 0 in --mix", k)
		}
	}
	if weights["introspect"] > 0 {
		if len(allowed) == 0 {
			return nil, errors.New("the model has no allowed login to mint a token for introspection")
		}
		for i := 0; i < 50 && i < len(allowed)*4; i++ {
			tok, err := p.mint(ctx, allowed[i%len(allowed)])
			if err != nil {
				return nil, err
			}
			form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}.Encode()
			h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
			req, _ := http.NewRequest(http.MethodPost, "/", nil)
			req.SetBasicAuth(url.QueryEscape(p.introID), url.QueryEscape(p.introSecret))
			h.Set("Authorization", req.Header.Get("Authorization"))
			sets["introspect"] = append(sets["introspect"], &loadtest.Request{Kind: "introspect", Method: http.MethodPost,
				Path: "/oauth2/introspect", Header: h, Body: []byte(form), Expect: []int{200}})
		}
		// Check once that the credentials work: a 401 on every request
		// would only show up as errors at the end.
		if err := p.check(ctx, sets["introspect"][0]); err != nil {
			return nil, fmt.Errorf("introspection: %w", err)
		}
	}
	return sets, nil
}

func (p *loadPlan) mint(ctx context.Context, c loginCase) (string, error) {
	r, err := p.native("mint", c, true)
	if err != nil {
		return "", err
	}
	body, status, err := p.send(ctx, r)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("warm-up login for %s: HTTP %d: %s (check --bearer and that the server runs)", c.user, status, strings.TrimSpace(string(body)))
	}
	var resp struct {
		Tokens *struct {
			AccessToken string `json:"access_token"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return "", fmt.Errorf("warm-up login: %w", err)
	}
	if resp.Tokens == nil || resp.Tokens.AccessToken == "" {
		return "", errors.New("the server minted no access token in the warm-up (the native caller needs mint allowed, or give introspect weight 0)")
	}
	return resp.Tokens.AccessToken, nil
}

func (p *loadPlan) check(ctx context.Context, r *loadtest.Request) error {
	body, status, err := p.send(ctx, r)
	if err != nil {
		return err
	}
	if !slices.Contains(r.Expect, status) {
		return fmt.Errorf("HTTP %d: %s (check the client id and secret)", status, strings.TrimSpace(string(body)))
	}
	return nil
}

func (p *loadPlan) send(ctx context.Context, r *loadtest.Request) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, p.base+r.Path, strings.NewReader(string(r.Body)))
	if err != nil {
		return nil, 0, err
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w (is 'claimsmith serve' running there?)", p.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b, resp.StatusCode, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeGeneratedModel writes a deterministic generated model (the one the
// benchmarks use) with applications whose required_roles some users lack.
func writeGeneratedModel(a *app, path string, users int) error {
	spec := authzgen.BenchSpec(users)
	doc := authzgen.Generate(spec)
	if doc.Claimsmith == nil {
		doc.Claimsmith = &authz.Section{}
	}
	for i := 0; i < spec.Clients; i++ {
		id := authzgen.GenClientID(i)
		// Require the client's first role: users holding none of it are denied.
		req := ""
		for _, r := range doc.Roles {
			if r.ApplicationID == id {
				req = r.Name
				break
			}
		}
		app := authz.Application{ClientID: id, Name: "Generated " + id}
		if req != "" {
			app.Metadata = map[string]string{"required_roles": req}
		}
		doc.Claimsmith.Applications = append(doc.Claimsmith.Applications, app)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := authz.Encode(f, doc, authz.ExportOptions{Full: true}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "wrote %s: %d users, %d groups, %d roles, %d clients\n", path, spec.Users, spec.Groups, spec.Roles, spec.Clients)
	return nil
}
