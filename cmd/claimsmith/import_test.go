package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
)

const sampleFile = "../../samples/data/extension-export.json"

// cli runs the binary's entry point in-process.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errs := cli(t, stdin, args...)
	if code != 0 {
		t.Fatalf("claimsmith %q: exit %d\n%s", args, code, errs)
	}
	return out
}

// TestImportExportRoundTrip is the acceptance pipeline:
// claimsmith import samples/data/x.json && claimsmith export | claimsmith import -
func TestImportExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	out := mustCLI(t, "", "--data-dir", dir, "import", sampleFile)
	if !strings.Contains(out, "9 groups, 9 roles, 8 permissions") || !strings.Contains(out, "revision 1") {
		t.Fatalf("import summary: %s", out)
	}
	first := mustCLI(t, "", "--data-dir", dir, "export")
	sample, _ := os.ReadFile(sampleFile)
	if first != string(sample) {
		t.Fatal("the sample file is not in canonical export form (export differs from it)")
	}
	mustCLI(t, first, "--data-dir", dir, "import", "-")
	second := mustCLI(t, "", "--data-dir", dir, "export")
	if first != second {
		t.Fatalf("round trip differs:\n%s\n---\n%s", first, second)
	}
	// Into an empty store, through a file.
	f := filepath.Join(t.TempDir(), "backup.json")
	mustCLI(t, "", "--data-dir", dir, "export", f)
	other := t.TempDir()
	mustCLI(t, "", "--data-dir", other, "import", f)
	if third := mustCLI(t, "", "--data-dir", other, "export"); third != first {
		t.Fatal("export of the re-imported file differs")
	}
}

func TestFullExportCarriesProfilesAndApplications(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "", "--data-dir", dir, "import", "../../samples/data/claimsmith-full.json")
	plain := mustCLI(t, "", "--data-dir", dir, "export")
	if strings.Contains(plain, `"claimsmith"`) {
		t.Fatal("default export must be exactly the extension's format")
	}
	full := mustCLI(t, "", "--data-dir", dir, "export", "--full")
	for _, want := range []string{`"claimsmith"`, `"required_roles": "viewer, admin"`, `"plan": "enterprise"`} {
		if !strings.Contains(full, want) {
			t.Fatalf("full export lacks %s", want)
		}
	}
	other := t.TempDir()
	mustCLI(t, full, "--data-dir", other, "import", "-")
	if again := mustCLI(t, "", "--data-dir", other, "export", "--full"); again != full {
		t.Fatal("full round trip differs")
	}
	var p struct {
		UserID      string         `json:"user_id"`
		AppMetadata map[string]any `json:"app_metadata"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "", "--data-dir", other, "users", "get", "auth0|alice")), &p); err != nil {
		t.Fatal(err)
	}
	if p.UserID != "auth0|alice" || p.AppMetadata["plan"] != "enterprise" {
		t.Fatalf("users get: %+v", p)
	}
}

func TestPolicyCommand(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "", "--data-dir", dir, "import", sampleFile)
	var pol authz.Policy
	out := mustCLI(t, "", "--data-dir", dir, "policy", "--user", "auth0|mallory", "--client", "portal-client",
		"--connection", "corp-ad", "--groups", `CORP\Domain Admins, CORP\Auditors`)
	if err := json.Unmarshal([]byte(out), &pol); err != nil {
		t.Fatal(err)
	}
	if strings.Join(pol.Groups, "|") != "Auditors|Compliance|Portal Admins" || strings.Join(pol.Roles, "|") != "admin" {
		t.Fatalf("policy: %s", out)
	}
	out = mustCLI(t, "", "--data-dir", dir, "policy", "--user", "nobody", "--client", "portal-client")
	if strings.Join(strings.Fields(out), "") != `{"groups":[],"roles":[],"permissions":[]}` {
		t.Fatalf("unknown user must get empty lists: %s", out)
	}
	if code, _, errs := cli(t, "", "--data-dir", dir, "policy", "--user", "x"); code != 2 || !strings.Contains(errs, "--client") {
		t.Fatalf("missing --client: exit %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", "--data-dir", filepath.Join(dir, "missing"), "policy", "--user", "x", "--client", "c"); code != 1 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("missing data dir: exit %d %s", code, errs)
	}
}

func TestInvalidImportChangesNothing(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "", "--data-dir", dir, "import", sampleFile)
	before := mustCLI(t, "", "--data-dir", dir, "export")
	for _, c := range []struct{ in, want string }{
		{`{"groups":[{"_id":"g1","name":"ok"},{"_id":"g2","name":""}]}`, `group "g2": name`},
		{`{"groups":[],"members":[]}`, `members: unknown top-level key`},
		{`{"roles":[{"_id":"r1","name":"r","applicationId":"c","users":"u"}]}`, `role "r1": users`},
		{`{"groups":[`, `document`},
	} {
		code, _, errs := cli(t, c.in, "--data-dir", dir, "import", "-")
		if code != 1 || !strings.Contains(errs, c.want) {
			t.Fatalf("import %s: exit %d, stderr %q, want it to name %q", c.in, code, errs, c.want)
		}
	}
	if after := mustCLI(t, "", "--data-dir", dir, "export"); after != before {
		t.Fatal("a refused import changed the store")
	}
	if out := mustCLI(t, "", "--data-dir", dir, "import", "--dry-run", sampleFile); !strings.Contains(out, "nothing imported") {
		t.Fatalf("dry run: %s", out)
	}
}

func TestImportProgressLinesWhenNotATerminal(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	spec := authzgen.BenchSpec(20000)
	spec.Groups, spec.Roles, spec.Permissions = 500, 100, 300
	if err := authz.Encode(&b, authzgen.Generate(spec), authz.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if b.Len() < 2*progressThreshold {
		t.Fatalf("generated file too small for progress: %d bytes", b.Len())
	}
	f := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(f, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The binary imports it (a pipe for stderr): the in-process import of
	// 6 MB under -race took 15–25 s of the package's time.
	_, errs, code := runBinary(t, buildClaimsmith(t), "--data-dir", t.TempDir(), "import", f)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"25%", "50%", "75%", "validating", "committing"} {
		if !strings.Contains(errs, want) {
			t.Fatalf("progress output lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "\r") {
		t.Fatal("no carriage-return bar when stderr is not a terminal")
	}
	// Small files stay quiet.
	_, _, errs = cli(t, "", "--data-dir", t.TempDir(), "import", sampleFile)
	if errs != "" {
		t.Fatalf("small import printed progress: %q", errs)
	}
}

func TestProgressBarOnTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, label: "import x", total: 4 << 20, tty: true, now: func() time.Time { return time.Time{} }}
	p.Add(1 << 20)
	p.Add(3 << 20)
	p.Done()
	if !strings.Contains(b.String(), "\rimport x [#######") || !strings.Contains(b.String(), "100%") {
		t.Fatalf("bar: %q", b.String())
	}
}

// Regression (issue 14 item 12): `claimsmith import` of a document that
// drops entities (here "{}") wiped the store without any confirmation.
func TestImportNeedsReplaceToRemove(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, "", "--data-dir", dir, "import", sampleFile)
	before := mustCLI(t, "", "--data-dir", dir, "export")
	code, _, errs := cli(t, `{}`, "--data-dir", dir, "import", "-")
	if code == 0 || !strings.Contains(errs, "would remove 9 groups, 9 roles, 8 permissions") || !strings.Contains(errs, "--replace") {
		t.Fatalf("destructive import: exit %d, stderr %q", code, errs)
	}
	if mustCLI(t, "", "--data-dir", dir, "export") != before {
		t.Fatal("a refused import changed the store")
	}
	out := mustCLI(t, `{"groups":[{"_id":"new","name":"New"}]}`, "--data-dir", dir, "import", "--dry-run", "-")
	for _, want := range []string{"nothing imported", "groups:       1 added, 9 removed", "  + new", "needs --replace"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, out)
		}
	}
	if mustCLI(t, "", "--data-dir", dir, "export") != before {
		t.Fatal("a dry run changed the store")
	}
	mustCLI(t, `{}`, "--data-dir", dir, "import", "--replace", "-")
	if out := mustCLI(t, "", "--data-dir", dir, "groups", "list"); strings.Contains(out, `"_id"`) {
		t.Fatalf("groups left after a confirmed empty import: %s", out)
	}
}
