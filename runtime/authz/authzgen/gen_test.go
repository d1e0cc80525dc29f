package authzgen

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestGenerateIsDeterministic(t *testing.T) {
	spec := GenSpec{Groups: 50, Roles: 10, Permissions: 30, Users: 20, Clients: 2, GroupsPerUser: 3, MaxDepth: 3, Seed: 7}
	a, _ := json.Marshal(Generate(spec))
	b, _ := json.Marshal(Generate(spec))
	if string(a) != string(b) {
		t.Fatal("same spec, different documents")
	}
	d := Generate(spec)
	if len(d.Groups) != 50 || len(d.Roles) != 10 || len(d.Permissions) != 30 {
		t.Fatalf("sizes: %d groups, %d roles, %d permissions", len(d.Groups), len(d.Roles), len(d.Permissions))
	}
	found := false
	for _, g := range d.Groups {
		found = found || slices.Contains(g.Members, BenchUser)
	}
	if !found {
		t.Fatal("the benchmark user is in no group")
	}
}

// The load test of the shipped binary imports this package: it must not
// bring package testing with it (issue 13).
func TestDoesNotLinkTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "testing" || p == "net/http/httptest" {
			t.Fatalf("authzgen depends on %s", p)
		}
	}
}
