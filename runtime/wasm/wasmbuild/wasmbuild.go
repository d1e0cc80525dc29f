// Package wasmbuild builds WebAssembly rules from source: Go (with the
// wasip1 toolchain that ships with Go), AssemblyScript (npm's assemblyscript
// and @extism/as-pdk, from the sample's package-lock.json) and WebAssembly
// text (wat2wasm from Debian's wabt). The tests of runtime/wasm and of the
// pipeline use it to build samples/rules during `go test`, so generated
// .wasm files are never committed.
//
// A missing tool is an error naming the tool and the `make deps` step that
// installs it: tests must fail, not skip, when CI lacks a tool.
package wasmbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ErrToolMissing is returned when a compiler is not installed.
var ErrToolMissing = errors.New("build tool missing")

// Go builds the Go rule in pkgDir (a main package with //go:build wasip1)
// into out, as a rule author would:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o out ./pkgDir
func Go(ctx context.Context, pkgDir, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("%w: the go command is not on PATH", ErrToolMissing)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildmode=c-shared", "-o", abs, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	return run(cmd, "go build "+pkgDir)
}

// AssemblyScript builds the AssemblyScript rule in dir (package.json with a
// "build" script taking --outFile) into out. node_modules is installed with
// `npm ci` from the committed package-lock.json when it is missing.
func AssemblyScript(ctx context.Context, dir, out string) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("%w: npm is not on PATH: run `make wasm-deps` (part of `make deps`; it installs Debian's nodejs and npm)", ErrToolMissing)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "asc")); err != nil {
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if err := run(cmd, "npm ci in "+dir); err != nil {
			return err
		}
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	asc := filepath.Join(dir, "node_modules", ".bin", "asc")
	cmd := exec.CommandContext(ctx, asc, append([]string{"assembly/index.ts", "--outFile", abs}, ascFlags()...)...)
	cmd.Dir = dir
	return run(cmd, "asc in "+dir)
}

// ascFlags are asc's options after the entry file and --outFile.
func ascFlags() []string {
	return []string{"--optimize", "--runtime", "incremental", "--use", "abort=assembly/index/myAbort"}
}

// WAT assembles a WebAssembly text file into out with wat2wasm; flags are
// passed on (e.g. --no-check to build an invalid module on purpose).
func WAT(ctx context.Context, src, out string, flags ...string) error {
	w, err := exec.LookPath("wat2wasm")
	if err != nil {
		return fmt.Errorf("%w: wat2wasm is not on PATH: run `make wasm-deps` (part of `make deps`; it installs Debian's wabt)", ErrToolMissing)
	}
	cmd := exec.CommandContext(ctx, w, append([]string{src, "-o", out}, flags...)...)
	return run(cmd, "wat2wasm "+src)
}

// WATSource assembles WebAssembly text given as a string (tests write their
// hostile modules inline).
func WATSource(ctx context.Context, src, out string, flags ...string) error {
	tmp := out + ".wat"
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		return err
	}
	return WAT(ctx, tmp, out, flags...)
}

func run(cmd *exec.Cmd, what string) error {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", what, err, strings.TrimSpace(buf.String()))
	}
	return nil
}

// RepoRoot finds the module root (the folder holding go.mod) above dir.
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		d = parent
	}
}

// Samples builds samples/rules on demand, each at most once per Samples
// value, into one temporary folder. Tests keep one in their package.
type Samples struct {
	// CacheDir, when set, keeps AssemblyScript builds across test runs,
	// keyed by a hash of the sample's sources (asc takes ~10 s a build; Go
	// builds have the go command's own cache).
	CacheDir string

	mu    sync.Mutex // guards built; each entry builds under its own lock
	dir   string
	root  string
	built map[string]*result
}

// result is one build: parallel tests wait for the same sample's build
// and run different samples' builds at the same time.
type result struct {
	mu   sync.Mutex
	done bool
	path string
	err  error
}

// NewSamples returns a builder writing into dir (a test's temporary folder
// or os.MkdirTemp in TestMain).
func NewSamples(dir string) (*Samples, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot(wd)
	if err != nil {
		return nil, err
	}
	return &Samples{dir: dir, root: root, built: map[string]*result{}}, nil
}

// Root is the repository root.
func (s *Samples) Root() string { return s.root }

// Build builds samples/rules/<name> and returns the .wasm path. The kind is
// found from the folder: a .wat file, a package.json, or Go sources.
func (s *Samples) Build(ctx context.Context, name string) (string, error) {
	return s.BuildDir(ctx, filepath.Join(s.root, "samples", "rules", name))
}

// BuildDir builds the rule in src (a folder laid out like a sample, named
// after the rule) and returns the .wasm path.
func (s *Samples) BuildDir(ctx context.Context, src string) (string, error) {
	s.mu.Lock()
	r, ok := s.built[src]
	if !ok {
		r = &result{path: filepath.Join(s.dir, fmt.Sprintf("%s-%d.wasm", filepath.Base(src), len(s.built)))}
		s.built[src] = r
	}
	s.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.err, r.done = s.build(ctx, src, r.path), true
	}
	return r.path, r.err
}

func (s *Samples) build(ctx context.Context, src, out string) error {
	if s.CacheDir == "" || !exists(filepath.Join(src, "package.json")) || exists(filepath.Join(src, filepath.Base(src)+".wat")) {
		return build(ctx, src, out)
	}
	key, err := sourceHash(src)
	if err != nil {
		return err
	}
	cached := filepath.Join(s.CacheDir, filepath.Base(src)+"-"+key+".wasm")
	if b, err := os.ReadFile(cached); err == nil {
		return os.WriteFile(out, b, 0o644)
	}
	if err := build(ctx, src, out); err != nil {
		return err
	}
	// A cache that cannot be written costs the next run a build, nothing else.
	if b, err := os.ReadFile(out); err == nil && os.MkdirAll(s.CacheDir, 0o755) == nil {
		tmp := cached + ".tmp" + strconv.Itoa(os.Getpid())
		if os.WriteFile(tmp, b, 0o644) == nil {
			_ = os.Rename(tmp, cached)
		}
	}
	return nil
}

// sourceHash hashes every file of an AssemblyScript sample but its
// node_modules (which package-lock.json pins), with the asc command line.
func sourceHash(src string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "asc %s\n", strings.Join(ascFlags(), " "))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || strings.HasSuffix(p, ".wasm") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:32], err
}

func build(ctx context.Context, src, out string) error {
	name := filepath.Base(src)
	var err error
	switch {
	case exists(filepath.Join(src, name+".wat")):
		err = WAT(ctx, filepath.Join(src, name+".wat"), out)
	case exists(filepath.Join(src, "package.json")):
		err = AssemblyScript(ctx, src, out)
	case exists(filepath.Join(src, "main.go")):
		err = Go(ctx, src, out)
	default:
		err = fmt.Errorf("%s: no main.go, package.json or %s.wat", src, name)
	}
	return err
}

// MustBuild is Build for tests: it fails the test on an error.
func (s *Samples) MustBuild(t testing.TB, name string) string {
	t.Helper()
	p, err := s.Build(context.Background(), name)
	if err != nil {
		t.Fatalf("building sample rule %s: %v", name, err)
	}
	return p
}

// MustBuildDir is BuildDir for tests.
func (s *Samples) MustBuildDir(t testing.TB, dir string) string {
	t.Helper()
	p, err := s.BuildDir(context.Background(), dir)
	if err != nil {
		t.Fatalf("building rule in %s: %v", dir, err)
	}
	return p
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
