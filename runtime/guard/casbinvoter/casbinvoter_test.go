package casbinvoter_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/runtime/guard/casbinvoter"
)

var bg = context.Background()

var _ guard.Voter = (*casbinvoter.Voter)(nil)

func TestCasbinAuthorizer(t *testing.T) {
	dir := t.TempDir()
	model := `[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[role_definition]
g = _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act
`
	policy := "p, admin, /reports/:id, GET\np, editor, /reports/:id, PUT\np, auth0|carol, order, GET\ng, auth0|dave, admin\n"
	write := func(n, s string) string {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := casbinvoter.New(casbinvoter.Config{Model: write("model.conf", model), Policy: write("policy.csv", policy)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, sub   string
		roles       []string
		method, obj string
		resource    string
		want        runtime.Vote
	}{
		{"role from the token", "auth0|alice", []string{"admin"}, "GET", "/reports/7", "", runtime.Allow},
		{"role without the action", "auth0|alice", []string{"editor"}, "GET", "/reports/7", "", runtime.Deny},
		{"role with the action", "auth0|alice", []string{"editor"}, "PUT", "/reports/7", "", runtime.Allow},
		{"user policy on a resource", "auth0|carol", nil, "GET", "/orders/1", "order", runtime.Allow},
		{"policy's own role link", "auth0|dave", nil, "GET", "/reports/1", "", runtime.Allow},
		{"nobody", "auth0|eve", []string{"viewer"}, "GET", "/reports/7", "", runtime.Deny},
	}
	for _, tc := range cases {
		vd, err := c.Vote(bg, &guard.AuthzRequest{Principal: &guard.Principal{Subject: tc.sub, Roles: tc.roles}, Method: tc.method, Path: tc.obj, Resource: tc.resource})
		if err != nil || vd.Vote != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.name, vd, err, tc.want)
		}
	}
	if _, err := casbinvoter.New(casbinvoter.Config{Model: write("bad.conf", "nonsense"), Policy: write("p.csv", "")}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad model: %v", err)
	}
	abstain, err := casbinvoter.New(casbinvoter.Config{Model: filepath.Join(dir, "model.conf"), Policy: filepath.Join(dir, "policy.csv"), NoMatch: "abstain"})
	if err != nil {
		t.Fatal(err)
	}
	if vd, _ := abstain.Vote(bg, &guard.AuthzRequest{Principal: &guard.Principal{Subject: "x"}, Method: "GET", Path: "/"}); vd.Vote != runtime.Abstain {
		t.Fatalf("no_match abstain: %v", vd)
	}
}
