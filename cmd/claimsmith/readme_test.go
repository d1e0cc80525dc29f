package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The executable README, as a newcomer meets it: a copy of the working
// tree as a clone holds it (a temp dir), `make run` in it — literally, with
// ADDR set to a free port, so it builds ./bin/claimsmith and seeds ./data
// of the copy — then every fenced sh and console block of README.md and
// samples/*/README.md in file order, from the copy's root, in a terminal
// where `eval "$(make -s dev-env)"` was done. The only rewrite is
// 127.0.0.1:8080 to the server's address. A block runs with
// bash -e -o pipefail and must exit 0.
//
// Markers, on the line just before a block's fence:
//
//	<!-- readme-test: skip (why) -->         never run here; the reason is required
//	<!-- readme-test: needs hydra (why) -->  run when Hydra is built on this machine
//
// A console block is `$ command` lines each followed by the output it
// prints; every printed line must appear in the command's output, in order
// ("…" stands for anything: alone on a line, or inside one). An sh block
// followed by prose ending in "prints:" and a text block is checked the
// same way against that text block.

var (
	readmeFence  = regexp.MustCompile("^```([a-z]*)\\s*$")
	readmeMarker = regexp.MustCompile(`^<!--\s*readme-test:\s*(skip|needs hydra)\s*\((.+)\)\s*-->$`)
	readmeAnyTag = regexp.MustCompile(`readme-test`)
)

type readmeBlock struct {
	file   string
	line   int
	lang   string
	text   string
	marker string // "", "skip" or "needs hydra"
	reason string
	// want is the text block an sh block is said to print.
	want []string
}

// readmeBlocks returns the sh and console blocks of one markdown file with
// their markers. A malformed marker (no reason) is an error.
func readmeBlocks(path string) ([]readmeBlock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var (
		out       []readmeBlock
		cur       *readmeBlock
		prev      string
		inOther   bool
		lineNo    int
		pendingAt int
		// expect: the last sh block's printed output follows (a text
		// block after prose ending in "prints:").
		expect, inExpect bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case cur != nil:
			if strings.TrimSpace(line) == "```" {
				out = append(out, *cur)
				expect = cur.lang == "sh"
				cur = nil
			} else {
				cur.text += line + "\n"
			}
		case inExpect:
			if strings.TrimSpace(line) == "```" {
				inExpect = false
			} else {
				out[len(out)-1].want = append(out[len(out)-1].want, line)
			}
		case inOther:
			if strings.TrimSpace(line) == "```" {
				inOther = false
			}
		default:
			if m := readmeFence.FindStringSubmatch(line); m != nil {
				if m[1] == "text" && expect && strings.HasSuffix(strings.TrimSpace(prev), "prints:") {
					expect, inExpect = false, true
					break
				}
				expect = false
				if m[1] != "sh" && m[1] != "console" {
					inOther = true
					break
				}
				cur = &readmeBlock{file: path, line: lineNo, lang: m[1]}
				if readmeAnyTag.MatchString(prev) {
					mm := readmeMarker.FindStringSubmatch(strings.TrimSpace(prev))
					if mm == nil {
						return nil, fmt.Errorf("%s:%d: malformed marker %q (want <!-- readme-test: skip (reason) --> or needs hydra (reason))", path, pendingAt, prev)
					}
					cur.marker, cur.reason = mm[1], mm[2]
				}
			}
		}
		if strings.TrimSpace(line) != "" {
			prev, pendingAt = line, lineNo
		}
	}
	return out, sc.Err()
}

func TestREADMEBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every README command against a real server; skipped with -short")
	}
	for _, tool := range []string{"bash", "curl", "jq", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's commands need %s", tool)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(root, "README.md")}
	more, _ := filepath.Glob(filepath.Join(root, "samples", "*", "README.md"))
	files = append(files, more...)
	var blocks []readmeBlock
	for _, f := range files {
		bs, err := readmeBlocks(f)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, bs...)
	}
	if len(blocks) < 8 {
		t.Fatalf("found only %d command blocks", len(blocks))
	}

	// The clone: the files git tracks or would track (no data/, bin/,
	// node_modules), so the README is tried as a newcomer gets it.
	clone := filepath.Join(t.TempDir(), "claimsmith")
	copyWorkTree(t, root, clone)
	// GOFLAGS=-trimpath: the clone's path changes every run; without it
	// make's go build would recompile everything each time.
	base := readmeEnv(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -trimpath"))

	// make run, literally, on a free port (ADDR), as a process group so
	// the test can stop it the way Ctrl-C does.
	addr := freeAddr(t)
	run := exec.Command("make", "run", "ADDR="+addr)
	run.Dir, run.Env = clone, base
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	srvLog := &syncBuffer{}
	run.Stdout, run.Stderr = srvLog, srvLog
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = run.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	waitReady(t, "http://"+addr+"/readyz", srvLog, exited)
	// What make run prints: the curl lines the README starts from.
	if miss := missingLine(srvLog.String(), []string{"claimsmith serve on http://" + addr,
		"http://" + addr + "/hooks/v1/post-login", "curl -s http://" + addr + "/.well-known/jwks.json", `eval "$(make -s dev-env)"`}); miss != "" {
		t.Fatalf("make run did not print %q:\n%s", miss, srvLog.String())
	}

	// The newcomer's terminal after eval "$(make -s dev-env)".
	envOut, err := runIn(t, clone, base, "make", "-s", "dev-env")
	if err != nil {
		t.Fatalf("make dev-env: %v\n%s", err, envOut)
	}
	env := base
	for _, l := range strings.Split(strings.TrimSpace(envOut), "\n") {
		env = append(env, strings.TrimPrefix(l, "export "))
	}

	hydra := hydraBuilt()
	for _, b := range blocks {
		rel, _ := filepath.Rel(root, b.file)
		t.Run(fmt.Sprintf("%s:%d", rel, b.line), func(t *testing.T) {
			switch {
			case b.marker == "skip":
				t.Skipf("marked skip: %s", b.reason)
			case b.marker == "needs hydra" && !hydra:
				t.Skipf("Hydra is not built on this machine (samples/hydra/build.sh): %s", b.reason)
			}
			text := strings.ReplaceAll(b.text, "127.0.0.1:8080", addr)
			if b.lang == "console" {
				runConsole(t, clone, env, text)
				return
			}
			out, err := runIn(t, clone, env, "bash", "-e", "-o", "pipefail", "-c", text)
			t.Logf("output:\n%s", out)
			if err != nil {
				t.Fatalf("block failed: %v\n--- block\n%s--- server log\n%s", err, b.text, srvLog.String())
			}
			if miss := missingLine(out, b.want); miss != "" {
				t.Fatalf("the block did not print %q (in order) as the README says", miss)
			}
		})
	}
}

// runConsole runs a console block: each `$ ` command (continued by a
// trailing backslash) in one bash session, checking the lines after it.
func runConsole(t *testing.T, dir string, env []string, text string) {
	t.Helper()
	type step struct {
		cmd  string
		want []string
	}
	var steps []step
	cont := false
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		switch {
		case cont:
			steps[len(steps)-1].cmd += "\n" + l
			cont = strings.HasSuffix(l, "\\")
		case strings.HasPrefix(l, "$ "):
			steps = append(steps, step{cmd: l[2:]})
			cont = strings.HasSuffix(l, "\\")
		case len(steps) > 0 && strings.TrimSpace(l) != "":
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, strings.TrimSpace(l))
		}
	}
	var script strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&script, "echo '@@step %d'\n%s\n", i, s.cmd)
	}
	out, err := runIn(t, dir, env, "bash", "-e", "-o", "pipefail", "-c", script.String())
	t.Logf("output:\n%s", out)
	if err != nil {
		t.Fatalf("console block failed: %v", err)
	}
	parts := regexp.MustCompile(`(?m)^@@step \d+\n`).Split(out, -1)[1:]
	for i, s := range steps {
		if i >= len(parts) {
			t.Fatalf("step %d (%s) printed nothing", i, s.cmd)
		}
		if miss := missingLine(parts[i], s.want); miss != "" {
			t.Fatalf("$ %s\ndid not print %q (in order) as the README says; it printed:\n%s", s.cmd, miss, parts[i])
		}
	}
}

// missingLine returns the first of want (in order, each line's "…"-separated
// fragments in order) that out does not print, or "".
func missingLine(out string, want []string) string {
	rest := out
	for _, w := range want {
		for _, frag := range strings.Split(strings.TrimSpace(w), "…") {
			if frag == "" {
				continue
			}
			j := strings.Index(rest, frag)
			if j < 0 {
				return w
			}
			rest = rest[j+len(frag):]
		}
	}
	return ""
}

// readmeEnv is the environment of the README's commands: the test's,
// without claimsmith settings the developer may have exported, plus extra.
func readmeEnv(environ []string, extra ...string) []string {
	var out []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "CLAIMSMITH_") || strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// runIn runs one command of the README in its own process group; when it
// ends, whatever it left running in the background (a block that failed
// before its own cleanup) is killed, and a block that hangs is stopped
// after blockLimit.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), blockLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A background process holding the output pipe must not hold the test.
	cmd.WaitDelay = 5 * time.Second
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return out.String(), err
}

// blockLimit bounds one README block; only a hang reaches it.
const blockLimit = 5 * time.Minute

// waitReady polls /readyz until it answers 200, or make run exits; the
// limit only bounds a server that never comes up (the first make run
// compiles claimsmith, minutes on a busy machine).
func waitReady(t *testing.T, url string, log *syncBuffer, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("make run exited:\n%s", log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("make run never became ready:\n%s", log.String())
}

// syncBuffer is the server's output, written by exec's copier while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// copyWorkTree copies the files of root that a clone would have: tracked
// ones and new ones git does not ignore (the working tree's state, so an
// uncommitted README change is what gets tested).
func copyWorkTree(t *testing.T, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("the README test copies the git work tree: %v", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or a symlink/submodule
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// hydraBuilt says whether samples/hydra/build.sh's binary is current on
// this machine (make test's deps build it); building it here would take
// minutes.
func hydraBuilt() bool {
	cache := os.Getenv("CLAIMSMITH_HYDRA_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return false
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "claimsmith", "hydra-v2.3.0")
	}
	_, err := os.Stat(filepath.Join(cache, "hydra"))
	return err == nil
}

func TestReadmeBlocksParser(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "R.md")
	md := "intro\n\n```sh\necho one\n```\n\n<!-- readme-test: skip (needs the moon) -->\n```sh\nmoon\n```\n\n```yaml\na: 1\n```\n\n" +
		"<!-- readme-test: needs hydra (Hydra) -->\n\n```console\n$ echo two\ntwo\n```\n"
	if err := os.WriteFile(p, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	bs, err := readmeBlocks(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 3 || bs[0].text != "echo one\n" || len(bs[0].want) != 0 || bs[0].marker != "" || bs[1].marker != "skip" || bs[1].reason != "needs the moon" ||
		bs[2].lang != "console" || bs[2].marker != "needs hydra" || bs[1].line != 8 {
		t.Fatalf("%+v", bs)
	}
	if err := os.WriteFile(p, []byte("<!-- readme-test: skip -->\n```sh\nx\n```\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readmeBlocks(p); err == nil || !strings.Contains(err.Error(), "malformed marker") {
		t.Fatalf("a skip without a reason was accepted: %v", err)
	}
}

func TestReadmeExpectedOutput(t *testing.T) {
	p := filepath.Join(t.TempDir(), "R.md")
	md := "```sh\necho hi\n```\n\nIt prints:\n\n```text\nhi there\n```\n\n```sh\ntrue\n```\n\n```text\nnot output\n```\n"
	if err := os.WriteFile(p, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	bs, err := readmeBlocks(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || len(bs[0].want) != 1 || bs[0].want[0] != "hi there" || len(bs[1].want) != 0 {
		t.Fatalf("%+v", bs)
	}
	for _, c := range []struct {
		out  string
		want []string
		miss string
	}{
		{"a\nb\nc\n", []string{"a", "…", "c"}, ""},
		{`{"id":"x1","ok":true}`, []string{`{"id":"…","ok":true}`}, ""},
		{"c\na\n", []string{"a", "c"}, "c"},
		{"exit 0\n", []string{"exit 3"}, "exit 3"},
	} {
		if got := missingLine(c.out, c.want); got != c.miss {
			t.Errorf("missingLine(%q, %q) = %q, want %q", c.out, c.want, got, c.miss)
		}
	}
}
