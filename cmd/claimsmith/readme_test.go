package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The executable README, as a newcomer meets it: a git clone of the
// repository in a temp dir (with the work tree's uncommitted changes laid
// over it, so a README edit is tested before it is committed), `make run`
// in it — literally, with ADDR set to a free port, so it builds
// ./bin/claimsmith and seeds ./data of the clone — then every fenced sh and
// console block of README.md and samples/*/README.md in file order (the
// first hour first: curl lines, check, token mint, make dry-run; the Hydra
// sample where Hydra is built), from the clone's root, in a terminal where
// `eval "$(make -s dev-env)"` was done. The only rewrite is 127.0.0.1:8080
// to the server's address. A block runs with bash -e -o pipefail and must
// exit 0. Afterwards `git status` in the clone must show nothing new: the
// examples write only under ./data, ./bin or a temp dir.
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
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "git", "jq", "make"} {
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
	if err := firstHourCovered(blocks); err != nil {
		t.Fatal(err)
	}
	hydra := hydraBuilt()
	if !hydra && os.Getenv("CLAIMSMITH_REQUIRE_HYDRA") != "" {
		t.Fatal("CLAIMSMITH_REQUIRE_HYDRA is set (make test) but Hydra is not built: run samples/hydra/build.sh (make hydra)")
	}

	// The clone, as a newcomer gets it, plus the work tree's changes.
	clone := filepath.Join(t.TempDir(), "claimsmith")
	cloneWorkTree(t, root, clone)
	before := gitStatus(t, clone)
	// The flags the test's binary was built with (binGOFLAGS): placed in
	// the clone's bin/, make run's go build finds it current instead of
	// linking again; a source that differs still rebuilds it.
	base := readmeEnv(os.Environ(), "GOFLAGS="+binGOFLAGS())
	if bin, err := sharedBinary(); err == nil {
		if b, err := os.ReadFile(bin); err == nil {
			_ = os.MkdirAll(filepath.Join(clone, "bin"), 0o755)
			_ = os.WriteFile(filepath.Join(clone, "bin", "claimsmith"), b, 0o755)
		}
	}

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
			env := env
			if b.marker == "needs hydra" {
				env = append(slices.Clip(env), hydraPorts(t)...)
			}
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
	if after := gitStatus(t, clone); after != before {
		t.Fatalf("the README's commands left files in the clone (examples write under ./data, ./bin or a temp dir):\n--- git status before\n%s--- after\n%s", before, after)
	}
}

// firstHourCovered checks that README.md's "The first hour" still walks a
// newcomer through the steps the README test exists to prove, unskipped
// and in order: the curl lines make run prints, token mint, make dry-run;
// and that the Hydra sample runs wherever Hydra is built.
func firstHourCovered(blocks []readmeBlock) error {
	steps := []string{"curl -s -H 'Authorization: Bearer dev-native-bearer-key'", "/.well-known/jwks.json",
		`eval "$(make -s dev-env)"`, "./bin/claimsmith token mint", "make dry-run"}
	next, hydra := 0, false
	for _, b := range blocks {
		if strings.HasSuffix(b.file, filepath.Join("samples", "hydra", "README.md")) {
			hydra = hydra || (b.marker == "needs hydra" && strings.Contains(b.text, "walkthrough.sh"))
			continue
		}
		if b.file != blocks[0].file || b.marker != "" {
			continue
		}
		for next < len(steps) && strings.Contains(b.text, steps[next]) {
			next++
		}
	}
	if next < len(steps) {
		return fmt.Errorf("README.md no longer runs %q in its first hour (in order, unmarked): the README test proves the newcomer path with it", steps[next])
	}
	if !hydra {
		return errors.New("samples/hydra/README.md lost its walkthrough block marked `needs hydra`: the newcomer's Hydra sample is no longer tested")
	}
	return nil
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

// cloneWorkTree clones root's HEAD into dst (git clone, shallow), then lays
// the work tree's state over it: the tracked files and the new ones git
// does not ignore as they are now, the deleted ones removed. A committed
// tree clones to exactly what a newcomer gets.
func cloneWorkTree(t *testing.T, root, dst string) {
	t.Helper()
	if out, err := exec.Command("git", "clone", "--quiet", "--depth", "1", "file://"+root, dst).CombinedOutput(); err != nil {
		t.Skipf("the README test clones the git repository: %v\n%s", err, out)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(filepath.Join(dst, rel)) // deleted in the work tree
			continue
		}
		if err != nil || !fi.Mode().IsRegular() {
			continue // a symlink or submodule: as cloned
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, rel)
		if cur, err := os.ReadFile(to); err == nil && bytes.Equal(cur, b) {
			continue // as committed
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// hydraPorts moves the Hydra of samples/hydra (hydra.yml: 4444 and 4445)
// to free ports through the environment — Hydra's own overrides of its
// configuration and walkthrough.sh's — so that a Hydra already running on
// this machine cannot answer in its place.
func hydraPorts(t *testing.T) []string {
	t.Helper()
	public, admin := freeAddr(t), freeAddr(t)
	_, pp, _ := strings.Cut(public, ":")
	_, ap, _ := strings.Cut(admin, ":")
	return []string{"SERVE_PUBLIC_PORT=" + pp, "SERVE_ADMIN_PORT=" + ap, "URLS_SELF_ISSUER=http://" + public + "/",
		"HYDRA_PUBLIC=http://" + public, "HYDRA_ADMIN=http://" + admin}
}

// gitStatus is the clone's `git status --porcelain` (untracked files
// listed one by one).
func gitStatus(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=all").CombinedOutput()
	if err != nil {
		t.Fatalf("git status: %v\n%s", err, out)
	}
	return string(out)
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

// TestFirstHourCovered: the README test refuses a README whose first hour
// lost a step (or marked it skip), or whose Hydra sample is no longer run.
func TestFirstHourCovered(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := readmeBlocks(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	hydra, err := readmeBlocks(filepath.Join(root, "samples", "hydra", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if err := firstHourCovered(append(slices.Clone(readme), hydra...)); err != nil {
		t.Fatalf("the README as it is: %v", err)
	}
	without := func(drop func(b *readmeBlock) bool) []readmeBlock {
		var out []readmeBlock
		for _, b := range append(slices.Clone(readme), hydra...) {
			if !drop(&b) {
				out = append(out, b)
			}
		}
		return out
	}
	for name, blocks := range map[string][]readmeBlock{
		"no make dry-run": without(func(b *readmeBlock) bool { return strings.Contains(b.text, "make dry-run") }),
		"token mint skipped": without(func(b *readmeBlock) bool {
			if strings.Contains(b.text, "token mint") {
				b.marker = "skip"
			}
			return false
		}),
		"no Hydra sample": without(func(b *readmeBlock) bool { return b.marker == "needs hydra" }),
	} {
		if err := firstHourCovered(blocks); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
