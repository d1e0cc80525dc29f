package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The tests that run claimsmith as a user would share one binary, built
// once per test run: go build caches the packages, but every build links
// again (seconds on a loaded machine). It is built without -race — a
// WebAssembly or JavaScript rule compiled by the race-instrumented wazero
// took minutes, the plain binary seconds — and with the GOFLAGS the README
// test gives `make run` in its clone, so that build finds it current.

// sharedBin is the directory of the shared binary; TestMain makes it before
// the tests and removes it after them.
var sharedBin string

// sharedBinary builds the binary on first use.
var sharedBinary = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(sharedBin, "claimsmith")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS="+binGOFLAGS())
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// binGOFLAGS are the build flags of the shared binary and of the README
// clone's `make run`: -trimpath, since the clone's path changes every run
// (without it every package would compile again), and no VCS stamp, since
// the clone's checkout differs from the work tree's.
func binGOFLAGS() string {
	return strings.TrimSpace(os.Getenv("GOFLAGS") + " -trimpath -buildvcs=false")
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "claimsmith-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedBin = dir
	// A whole-package run (make test) builds the binary while the first
	// tests run in-process instead of when the first binary test asks.
	flag.Parse()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" && !testing.Short() {
		go func() { _, _ = sharedBinary() }()
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildClaimsmith returns the real binary for tests that run it as a user
// would (built once, see sharedBinary).
func buildClaimsmith(t *testing.T) string {
	t.Helper()
	bin, err := sharedBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
