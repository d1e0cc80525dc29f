package guard_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/runtime/wasm"
	"github.com/claimsmith/claimsmith/runtime/wasm/wasmbuild"
)

// TestWasmVoter runs the deny-blocked-ips sample login rule, unchanged, as a
// voter in the same sandboxed runtime: it denies requests from a blocked IP
// and abstains otherwise.
func TestWasmVoter(t *testing.T) {
	out := filepath.Join(t.TempDir(), "deny-blocked-ips.wasm")
	if err := wasmbuild.WAT(bg, "../../samples/rules/deny-blocked-ips/deny-blocked-ips.wat", out); err != nil {
		t.Fatal(err)
	}
	l := wasm.NewLoader(wasm.Options{})
	t.Cleanup(func() { _ = l.Close(bg) })
	v, err := guard.NewWasmVoter(bg, l, runtime.ModuleSpec{Name: "blocked-ips", Path: out, Timeout: time.Second, PoolSize: 1,
		Config: map[string]string{"blocked_ips": "203.0.113.9,198.51.100.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	p := &guard.Principal{Subject: "auth0|alice", Roles: []string{"admin"}}
	for _, c := range []struct {
		ip   string
		want runtime.Vote
	}{{"203.0.113.9", runtime.Deny}, {"198.51.100.1", runtime.Deny}, {"192.0.2.1", runtime.Abstain}} {
		vd, err := v.Vote(bg, &guard.AuthzRequest{Principal: p, Method: "GET", Path: "/x", RemoteIP: c.ip})
		if err != nil || vd.Vote != c.want {
			t.Errorf("ip %s: %+v %v, want %v", c.ip, vd, err, c.want)
		}
	}
	// As a global authorizer with allowed_roles on the route.
	f := newFixture(t)
	g := f.guard(t, guard.Options{Authorizers: []guard.Voter{v}})
	route := &guard.Route{AllowedRoles: []string{"admin"}}
	if d, err := g.Authorize(bg, &guard.AuthzRequest{Principal: p, RemoteIP: "192.0.2.1", Route: route}); err != nil || !d.Allowed || d.Voter != "allowed_roles" {
		t.Fatalf("allowed: %+v %v", d, err)
	}
	if d, err := g.Authorize(bg, &guard.AuthzRequest{Principal: p, RemoteIP: "203.0.113.9", Route: route}); err == nil || d.Voter != "wasm:blocked-ips" {
		t.Fatalf("blocked: %+v %v", d, err)
	}
}
