package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsersExplain: `users explain` prints the why-chains of the sample
// data and, with --json, the lists `policy` answers.
func TestUsersExplain(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runCLI(t, "", "--data-dir", data, "import", "../../samples/data/claimsmith-full.json"); code != 0 {
		t.Fatalf("import: %d %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "", "--data-dir", data, "users", "explain", "auth0|alice", "--client", "portal-client")
	if code != 0 {
		t.Fatalf("explain: %d %s", code, errOut)
	}
	for _, want := range []string{
		"editor: member of SRE → nested in Platform → nested in Engineering → role editor",
		"manage:portal: member of Portal Admins → role admin → permission manage:portal",
		`app_metadata: {"plan":"enterprise"}`,
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("explain output lacks %q:\n%s", want, out)
		}
	}
	_, js, _ := runCLI(t, "", "--data-dir", data, "users", "explain", "--json", "auth0|alice", "--client", "portal-client")
	_, pol, _ := runCLI(t, "", "--data-dir", data, "policy", "--user", "auth0|alice", "--client", "portal-client")
	var v struct{ Roles []struct{ Name string } }
	var p struct{ Roles []string }
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(pol), &p); err != nil {
		t.Fatal(err)
	}
	if len(v.Roles) != len(p.Roles) || len(p.Roles) == 0 {
		t.Fatalf("explain roles %+v, policy roles %v", v.Roles, p.Roles)
	}
	for i := range p.Roles {
		if v.Roles[i].Name != p.Roles[i] {
			t.Fatalf("explain roles %+v, policy roles %v", v.Roles, p.Roles)
		}
	}
	if code, _, errOut := runCLI(t, "", "--data-dir", data, "users", "explain", "auth0|alice"); code != 2 || !strings.Contains(errOut, "--client") {
		t.Fatalf("explain without --client: %d %s", code, errOut)
	}
}
