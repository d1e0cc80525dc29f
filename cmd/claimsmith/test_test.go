package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/wasm/wasmbuild"
)

// runBinary runs the binary from the repository root and returns stdout,
// stderr and the exit status.
func runBinary(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), bin, args...)
	cmd.Dir = filepath.Join("..", "..")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// devSecrets are the development secrets `make run` gives the sample
// configuration (see the Makefile's DEV_ENV).
var devSecrets = map[string]string{
	"CLAIMSMITH_DEV_BEARER_KEY":        "dev-native-bearer-key",
	"CLAIMSMITH_DEV_WEBHOOK_SECRET":    "whsec_Y2xhaW1zbWl0aC1kZXYtd2ViaG9vay1zZWNyZXQtMzJi",
	"CLAIMSMITH_DEV_HYDRA_KEY":         "dev-hydra-key",
	"CLAIMSMITH_DEV_EXTENSION_KEY":     "dev-extension-key",
	"CLAIMSMITH_DEV_INTROSPECT_SECRET": "dev-introspection-secret",
}

// devEnv sets the development secrets for the test (and the binaries it
// starts).
func devEnv(t *testing.T) {
	t.Helper()
	for k, v := range devSecrets {
		t.Setenv(k, v)
	}
}

// readmeCase is one section of samples/events/README.md.
type readmeCase struct {
	event    string
	command  []string
	exit     int
	expected []string
}

var (
	readmeSection = regexp.MustCompile("^## (\\S+\\.json)$")
	readmeExit    = regexp.MustCompile("^Exit status (\\d+)\\.$")
	traceDuration = regexp.MustCompile(` [0-9.]+(ns|µs|ms|s)$`)
)

// parseEventsReadme reads the command template and, per event, the exit
// status and the expected output block.
func parseEventsReadme(t *testing.T) []readmeCase {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "samples", "events", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		cases    []readmeCase
		template []string
		inBlock  string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inBlock == "" && (line == "```sh" || line == "```text"):
			inBlock = line
			continue
		case inBlock != "" && line == "```":
			inBlock = ""
			continue
		case inBlock == "```sh" && template == nil:
			template = strings.Fields(line)
			continue
		case inBlock == "```text" && len(cases) > 0:
			cases[len(cases)-1].expected = append(cases[len(cases)-1].expected, line)
			continue
		}
		if m := readmeSection.FindStringSubmatch(line); m != nil {
			cases = append(cases, readmeCase{event: m[1], exit: -1})
		}
		if m := readmeExit.FindStringSubmatch(line); m != nil && len(cases) > 0 {
			cases[len(cases)-1].exit, _ = strconv.Atoi(m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(template) < 2 || filepath.Base(template[0]) != "claimsmith" {
		t.Fatalf("README has no claimsmith command block: %q", template)
	}
	for i := range cases {
		c := &cases[i]
		for _, a := range template[1:] {
			if strings.HasPrefix(a, "samples/events/") {
				a = "samples/events/" + c.event
			}
			c.command = append(c.command, a)
		}
	}
	return cases
}

// TestSampleEventsMatchReadme runs `claimsmith test` on every sample event
// with the built binary and checks what samples/events/README.md says: the
// exit status and the output lines, in order (trace durations aside).
func TestSampleEventsMatchReadme(t *testing.T) {
	t.Parallel()
	bin := buildClaimsmith(t)
	cases := parseEventsReadme(t)
	events, _ := filepath.Glob(filepath.Join("..", "..", "samples", "events", "*.json"))
	if len(cases) != len(events) || len(cases) < 4 {
		t.Fatalf("README describes %d events, samples/events has %d", len(cases), len(events))
	}
	for _, c := range cases {
		t.Run(c.event, func(t *testing.T) {
			if c.exit < 0 || len(c.expected) == 0 {
				t.Fatalf("README section %s lacks an exit status or an output block", c.event)
			}
			stdout, stderr, code := runBinary(t, bin, c.command...)
			if code != c.exit {
				t.Fatalf("exit %d, README says %d\nstdout:\n%s\nstderr:\n%s", code, c.exit, stdout, stderr)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
				got = append(got, traceDuration.ReplaceAllString(l, ""))
			}
			if strings.Join(got, "\n") != strings.Join(c.expected, "\n") {
				t.Fatalf("output differs from samples/events/README.md\n--- got\n%s\n--- README\n%s", strings.Join(got, "\n"), strings.Join(c.expected, "\n"))
			}
		})
	}
}

// TestConfigErrorsExitWithOneLine checks the acceptance criterion: a
// configuration error exits non-zero with one line naming the file, the
// line, the key and the rule entry — for `check` and for `test`.
func TestConfigErrorsExitWithOneLine(t *testing.T) {
	devEnv(t)
	good, err := os.ReadFile(filepath.Join("..", "..", "samples", "config", "claimsmith.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new string
		want           string // the line after "FILE:LINE: "; LINE is where new is
	}{
		{"unknown rule", "rule: required-roles", "rule: required-rolez",
			`key "pipeline.rules[2].rule": rule "required-roles": unknown rule "required-rolez" (built-in rules: add-request-context, allowed-connections, authorization, copy-metadata-claims, require-verified-email, required-roles, time-window)`},
		{"unknown key in rule config", "        metadata_key: required_roles", "        metadata_kee: required_roles",
			`key "pipeline.rules[2].config.metadata_kee": rule "required-roles": unknown key (known: metadata_key)`},
		{"unknown key in entry", "      on_error: skip", "      on_errors: skip",
			`key "pipeline.rules[4].on_errors": rule "request-context": unknown key (known: allowed_hosts, config, js, memory, name, on_error, pool_size, rule, secrets, timeout, wasm)`},
		{"bad namespace", "namespace: https://example.com/", "namespace: example.com",
			`key "pipeline.namespace": "example.com" is not an http(s) URL such as https://example.com/`},
		{"bad timeout", "      timeout: 100ms", "      timeout: 100 parsecs",
			`key "pipeline.rules[1].timeout": rule "authorization": "100 parsecs" is not a duration such as 100ms or 2s`},
		{"bad pipeline timeout", "  timeout: 2s", "  timeout: soon",
			`key "pipeline.timeout": "soon" is not a duration such as 100ms or 2s`},
		{"bad nested rule setting", "        id_token: {groups: true, roles: true, permissions: false}", "        id_token: {groups: true, roles: yes-please, permissions: false}",
			`key "pipeline.rules[1].config.id_token.roles": rule "authorization": expected true or false, got string`},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(c.old)) {
				t.Fatalf("sample config lacks %q", c.old)
			}
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, bytes.Replace(good, []byte(c.old), []byte(c.new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"check", "--config", path, "--data-dir", filepath.Join(dir, "none")},
				{"test", "--config", path, "--data", "../../samples/data/claimsmith-full.json", "--event", "../../samples/events/employee.json"},
			} {
				var out, errb bytes.Buffer
				code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
				stdout, stderr := out.String(), errb.String()
				// check lists the environment the file reads, nothing else.
				if code != 1 || (stdout != "" && !strings.HasPrefix(stdout, "environment:\n")) {
					t.Fatalf("%v: exit %d stdout %q", args[0], code, stdout)
				}
				line := bytes.Count(good[:bytes.Index(good, []byte(c.old))], []byte("\n")) + 1
				want := fmt.Sprintf("claimsmith %s: %s:%d: %s\n", args[0], path, line, c.want)
				if stderr != want {
					t.Fatalf("%v: stderr\n%q\nwant\n%q", args[0], stderr, want)
				}
			}
		})
	}
}

// TestCheckSampleConfig checks that the sample configuration is valid.
func TestCheckSampleConfig(t *testing.T) {
	devEnv(t)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"--data-dir", filepath.Join(t.TempDir(), "none"), "check", "--config", "../../samples/config/claimsmith.yaml"},
		strings.NewReader(""), &out, &errb)
	sample, err := os.ReadFile("../../samples/config/claimsmith.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The line of the key, found rather than hard-coded: comments above it change.
	line := bytes.Count(sample[:bytes.Index(sample, []byte("webhook_secret_env:"))], []byte("\n")) + 1
	if code != 0 || !strings.Contains(out.String(), "ok — pipeline of 5 rule(s)") ||
		!strings.Contains(out.String(), fmt.Sprintf("  CLAIMSMITH_DEV_WEBHOOK_SECRET (hooks.native.callers[0].webhook_secret_env, line %d): set\n", line)) {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}

// TestWasmRuleInPipeline builds a sample WebAssembly rule from source and
// runs it in the dry run next to the built-in rules, with the module path
// relative to the configuration file; `check` compiles it too. The binary
// runs it: wazero compiling the module under -race took over a minute.
func TestWasmRuleInPipeline(t *testing.T) {
	t.Parallel()
	bin := buildClaimsmith(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := wasmbuild.Go(context.Background(), filepath.Join("..", "..", "samples", "rules", "department-claims"), filepath.Join(dir, "rules", "department.wasm")); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(cfg, []byte(`pipeline:
  namespace: https://example.com/
  rules:
    - rule: authorization
    - name: department
      wasm: rules/department.wasm
      timeout: 1s
      pool_size: 1
      config:
        namespace: https://example.com/
        contractor_group: Contractors
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runBinary(t, bin, "test", "--config", cfg, "--data", "samples/data/claimsmith-full.json",
		"--event", "samples/events/contractor-without-role.json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"  https://example.com/contractor = true",
		"  https://example.com/departments = []",
		"  2. department [wasm] abstain",
		"       info: user auth0|frank: 0 departments, contractor=true",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, errs, code = runBinary(t, bin, "--data-dir", filepath.Join(dir, "none"), "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "2. department [wasm] timeout 1s, on_error deny") {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestDryRunWritesNothing runs the dry run against a file store: the stored
// profile is read (the IdP-less user gets their stored plan) but the
// patches the run shows are not persisted.
func TestDryRunWritesNothing(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cli := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"--data-dir", dataDir}, args...), strings.NewReader(""), &out, &errb)
		return out.String() + errb.String(), code
	}
	if out, code := cli("import", "../../samples/data/claimsmith-full.json"); code != 0 {
		t.Fatalf("import: %d %s", code, out)
	}
	before, code := cli("users", "get", "auth0|alice")
	if code != 0 || !strings.Contains(before, "enterprise") {
		t.Fatalf("users get: %d %s", code, before)
	}
	out, code := cli("test", "--config", "../../samples/config/claimsmith.yaml", "--event", "../../samples/events/employee.json")
	if code != 0 || !strings.Contains(out, `https://example.com/plan = "enterprise"`) ||
		!strings.Contains(out, `app_metadata patch: {"authorization":`) {
		t.Fatalf("test: %d\n%s", code, out)
	}
	after, _ := cli("users", "get", "auth0|alice")
	if after != before || strings.Contains(after, "Portal Admins") {
		t.Fatalf("the dry run changed the stored profile:\nbefore %s\nafter %s", before, after)
	}
}

// TestCheckAndServeAgree runs `claimsmith check` and `claimsmith serve` on
// the same broken files: both exit 1 with the same one line naming the
// file, the line and the key (runtime/setup's table covers every section;
// this shows the commands go through it).
func TestCheckAndServeAgree(t *testing.T) {
	devEnv(t)
	t.Setenv("CLAIMSMITH_DEV_WEBHOOK_SECRET", "whsec_!!not-base64")
	good, err := os.ReadFile(filepath.Join("..", "..", "samples", "config", "claimsmith.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct{ name, old, new, want string }{
		{"malformed whsec_", "", "", `key "hooks.native.callers[0].webhook_secret_env": `},
		{"bad algorithm", "  algorithm: ES256\n", "  algorithm: HS512\n", `key "tokens.algorithm": "HS512" is not one of`},
		{"unknown backend", "store:\n  file:\n", "store:\n  backend: etcd\n  file:\n", `key "store.backend": is "etcd"`},
		{"second document", "tokens:\n", "---\ntokens:\n", `a second YAML document`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(c.old)) {
				t.Fatalf("sample config lacks %q", c.old)
			}
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			src := good
			if c.old != "" {
				src = bytes.Replace(good, []byte(c.old), []byte(c.new), 1)
			}
			if err := os.WriteFile(path, src, 0o600); err != nil {
				t.Fatal(err)
			}
			verdict := func(args ...string) string {
				var out, errb bytes.Buffer
				code := run(context.Background(), append([]string{"--data-dir", filepath.Join(dir, "data-"+args[0]), "--config", path}, args...),
					strings.NewReader(""), &out, &errb)
				msg, ok := strings.CutPrefix(errb.String(), "claimsmith "+args[0]+": ")
				if code != 1 || !ok || !strings.HasPrefix(msg, path+":") || !strings.Contains(msg, c.want) || strings.Count(msg, "\n") != 1 {
					t.Fatalf("%s: exit %d, stderr %q, want %q", args[0], code, errb.String(), c.want)
				}
				return msg
			}
			if checked, served := verdict("check"), verdict("serve", "--addr", "127.0.0.1:0"); checked != served {
				t.Fatalf("check says %q, serve says %q", checked, served)
			}
		})
	}
}
