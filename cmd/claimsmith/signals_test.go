package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeSignals runs the real binary, as an operator does: SIGHUP
// reloads the configuration (the generation metric moves to 2) and SIGTERM
// stops the server gracefully with exit status 0. Signals and exit codes
// are what only the binary can show; everything else starts the server
// in-process through runtime/setup.
func TestServeSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildClaimsmith(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(cfg, []byte("pipeline:\n  namespace: https://example.com/\n  rules:\n    - rule: required-roles\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	out := &lockedBuffer{}
	cmd := exec.Command(bin, "--data-dir", filepath.Join(dir, "data"), "--config", cfg, "serve", "--addr", addr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("serve output:\n%s", out.String())
		}
	})
	metric := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "claimsmith_config_generation ") {
				return strings.TrimPrefix(l, "claimsmith_config_generation ")
			}
		}
		return ""
	}
	eventually(t, 30*time.Second, "serve answers with generation 1", func() bool { return metric() == "1" })
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "SIGHUP reloads (generation 2)", func() bool { return metric() == "2" })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Fatalf("serve after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}
