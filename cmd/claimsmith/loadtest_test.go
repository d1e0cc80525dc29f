package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadtestAgainstServe runs `claimsmith loadtest` as a user would, against
// a real `claimsmith serve` on the sample config and data with the dev
// secrets `make run` uses: every kind of the mix must answer as the model
// says (allowed, denied, Hydra, introspection) and the report and the plot
// must be written.
func TestLoadtestAgainstServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	bin := buildClaimsmith(t)
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	data := t.TempDir()
	if _, stderr, code := runBinary(t, bin, "--data-dir", data, "import", "samples/data/claimsmith-full.json"); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	devEnv(t)
	n := startNode(t, bin, "loadtest-target", "--log-level", "warn", "--data-dir", data,
		"--config", filepath.Join(root, "samples", "config", "claimsmith.yaml"))
	out := t.TempDir()
	stdout, stderr, code := runBinary(t, bin, "loadtest", "--url", n.url, "--rate", "200", "--duration", "1s", "--out", out)
	if code != 0 {
		t.Fatalf("loadtest exit %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, kind := range []string{"post-login", "denied", "hydra", "introspect", "all-service"} {
		if !strings.Contains(stdout, "\n"+kind+" ") {
			t.Errorf("report has no %q row:\n%s", kind, stdout)
		}
	}
	if !strings.Contains(stdout, "errors 0") {
		t.Errorf("expected no errors:\n%s", stdout)
	}
	svg, err := os.ReadFile(filepath.Join(out, "latency.svg"))
	if err != nil || !strings.Contains(string(svg), "<polyline") {
		t.Fatalf("latency.svg missing or without a plot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "report.txt")); err != nil {
		t.Fatal(err)
	}
}
