package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/cmd/claimsmith/internal/loadtest"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

// TestLoadtestAgainstServe runs `claimsmith loadtest` as a user would, against
// a real `claimsmith serve` on the sample config and data with the dev
// secrets `make run` uses: every kind of the mix must answer as the model
// says (allowed, denied, Hydra, introspection) and the report and the plot
// must be written.
func TestLoadtestAgainstServe(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	data := t.TempDir()
	if code, _, stderr := cli(t, "", "--data-dir", data, "import", "../../samples/data/claimsmith-full.json"); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	devEnv(t)
	url := serveInProcess(t, data, filepath.Join("..", "..", "samples", "config", "claimsmith.yaml"))
	out := t.TempDir()
	// The README's block is rewritten from the report (--readme).
	readme := filepath.Join(filepath.Dir(out), "README.md")
	if err := os.WriteFile(readme, []byte("# x\n\n"+loadtest.ReadmeBegin+"\nold\n"+loadtest.ReadmeEnd+"\n\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A modest rate: the server shares this (possibly -race) process with
	// the generator, and the test is about answers, not throughput.
	code, stdout, stderr := cli(t, "", "--log-level", "warn", "loadtest", "--data", "../../samples/data/claimsmith-full.json", "--url", url, "--rate", "40", "--duration", "2s", "--out", out, "--data-dir", data, "--readme", readme)
	if code != 0 {
		t.Fatalf("loadtest exit %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, kind := range []string{"post-login", "denied", "hydra", "introspect", "all-service"} {
		if !strings.Contains(stdout, "\n"+kind+" ") {
			t.Errorf("report has no %q row:\n%s", kind, stdout)
		}
	}
	if !strings.Contains(stdout, "machine: ") || !strings.Contains(stdout, "data dir "+data+" (fdatasync of 4 KiB: median ") {
		t.Errorf("the report does not name the machine and the data dir's fsync latency:\n%s", stdout)
	}
	if !strings.Contains(stdout, "errors 0") {
		t.Errorf("expected no errors:\n%s", stdout)
	}
	svg, err := os.ReadFile(filepath.Join(out, "latency.svg"))
	if err != nil || !strings.Contains(string(svg), "<polyline") {
		t.Fatalf("latency.svg missing or without a plot: %v", err)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nafter\n", "by `claimsmith loadtest --data ../../samples/data/claimsmith-full.json --url " + url,
		"**at 40 req/s: p50 ", "](" + filepath.Base(out) + "/latency.svg)", string(report)} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("the README block lacks %q:\n%s", want, doc)
		}
	}
	if strings.Contains(string(doc), "\nold\n") {
		t.Errorf("the old block was kept:\n%s", doc)
	}
}

// serveInProcess builds the server the configuration describes through
// runtime/setup (exactly what `claimsmith serve` builds) and serves it on a
// loopback port until the test ends; it returns the base URL.
func serveInProcess(t *testing.T, dataDir, cfgPath string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg, err := setup.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	srv, err := setup.Build(ctx, cfg, setup.Options{
		Env:       setup.Env{DataDir: dataDir, Getenv: os.Getenv, Log: slog.New(slog.DiscardHandler)},
		Overrides: setup.Overrides{Addr: ln.Addr().String(), Issuer: url},
	})
	if err != nil {
		_ = ln.Close()
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = srv.Close()
	})
	return url
}

// TestLoadtestFindMaxNoRateStillReports: when no probed rate meets the SLO
// (here an impossible p99 of 1µs), loadtest fails — and still writes the
// report and the README block saying so, with the search's probes, rather
// than leaving the last good numbers standing.
func TestLoadtestFindMaxNoRateStillReports(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	data := t.TempDir()
	if code, _, stderr := cli(t, "", "--data-dir", data, "import", "../../samples/data/claimsmith-full.json"); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	devEnv(t)
	url := serveInProcess(t, data, filepath.Join("..", "..", "samples", "config", "claimsmith.yaml"))
	out := t.TempDir()
	readme := filepath.Join(filepath.Dir(out), "README.md")
	if err := os.WriteFile(readme, []byte(loadtest.ReadmeBegin+"\nold numbers\n"+loadtest.ReadmeEnd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "", "--log-level", "warn", "loadtest", "--data", "../../samples/data/claimsmith-full.json", "--url", url,
		"--find-max", "--max-p99", "1us", "--step", "300ms", "--repeats", "2", "--out", out, "--data-dir", data, "--readme", readme)
	if code == 0 || !strings.Contains(stderr, "no probed rate met p99 ≤ 1µs") {
		t.Fatalf("exit %d, want a failure naming the SLO:\n%s\n%s", code, stdout, stderr)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.txt"))
	if err != nil || !strings.Contains(string(report), "100 req/s  fails") || !strings.Contains(string(report), "no probed rate met the SLO") {
		t.Fatalf("report.txt (%v):\n%s", err, report)
	}
	doc, _ := os.ReadFile(readme)
	if !strings.Contains(string(doc), "**no probed rate met p99 ≤ 1µs (from 100 req/s); at 100 req/s: ") || strings.Contains(string(doc), "old numbers") {
		t.Fatalf("README block:\n%s", doc)
	}
}
