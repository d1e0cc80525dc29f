package guard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
)

func fixed(v runtime.Vote) guard.Voter {
	return guard.VoterFunc(func(context.Context, *guard.AuthzRequest) (guard.Verdict, error) {
		return guard.Verdict{Vote: v, Reason: "fixed " + v.String()}, nil
	})
}

// TestRouteDecisionMatrix runs the decision table through route voters:
// the guard must decide exactly as runtime.Matrix (the login pipeline's).
func TestRouteDecisionMatrix(t *testing.T) {
	rows := []struct {
		votes           string
		precedence, def string
		allowed         bool
		voter           string
		ran             int
	}{
		{"", "deny", "allow", true, "", 0},
		{"", "deny", "deny", false, "", 0},
		{"--", "deny", "allow", true, "", 2},
		{"--", "deny", "deny", false, "", 2},
		{"--", "allow", "deny", false, "", 2},
		{"aa", "deny", "deny", true, "v0", 2},
		{"aa", "allow", "deny", true, "v0", 1},
		{"dd", "deny", "allow", false, "v0", 1},
		{"dd", "allow", "allow", false, "v0", 2},
		{"-a", "deny", "deny", true, "v1", 2},
		{"-d", "allow", "allow", false, "v1", 2},
		{"ad", "deny", "allow", false, "v1", 2},
		{"da", "deny", "allow", false, "v0", 1},
		{"ad", "allow", "deny", true, "v0", 1},
		{"da", "allow", "deny", true, "v1", 2},
		{"-ad", "deny", "allow", false, "v2", 3},
		{"-da", "allow", "deny", true, "v2", 3},
		{"a-d", "", "", false, "v2", 3},
		{"---", "", "", true, "", 3},
	}
	p := &guard.Principal{Subject: "u"}
	for _, r := range rows {
		t.Run(fmt.Sprintf("%s/%s/%s", r.votes, r.precedence, r.def), func(t *testing.T) {
			m, _, err := runtime.ParseMatrix(r.precedence, r.def)
			if err != nil {
				t.Fatal(err)
			}
			var vs []guard.Voter
			for i, c := range r.votes {
				v := map[rune]runtime.Vote{'a': runtime.Allow, 'd': runtime.Deny, '-': runtime.Abstain}[c]
				vs = append(vs, guard.Named(fmt.Sprintf("v%d", i), fixed(v)))
			}
			f := newFixture(t)
			g := f.guard(t, guard.Options{Matrix: m})
			d, err := g.Authorize(bg, &guard.AuthzRequest{Principal: p, Route: &guard.Route{Voters: vs}})
			if d.Allowed != r.allowed || d.Voter != r.voter || d.Votes != r.ran {
				t.Fatalf("got %+v, want allowed=%v voter=%q ran=%d", d, r.allowed, r.voter, r.ran)
			}
			if (err == nil) != r.allowed {
				t.Fatalf("error %v for allowed=%v", err, r.allowed)
			}
			// Same answer as the shared matrix.
			tl := runtime.NewTally()
			for _, c := range r.votes {
				tl.Add(map[rune]runtime.Vote{'a': runtime.Allow, 'd': runtime.Deny, '-': runtime.Abstain}[c])
			}
			if v, _ := tl.Decide(m); (v == runtime.Allow) != r.allowed {
				t.Fatalf("runtime.Matrix says %v", v)
			}
		})
	}
}

// TestRouteMetadata covers allowed_roles, denied_roles, scopes, resource,
// global authorizers, failing voters and skip, through Protect over HTTP.
func TestRouteMetadata(t *testing.T) {
	f := newFixture(t)
	ownerVoter := guard.Named("owner", guard.VoterFunc(func(_ context.Context, r *guard.AuthzRequest) (guard.Verdict, error) {
		if r.HTTP.PathValue("owner") == r.Principal.Subject {
			return guard.Allow("owner"), nil
		}
		return guard.Deny("not the owner"), nil
	}))
	var sawResource string
	global := guard.Named("audit", guard.VoterFunc(func(_ context.Context, r *guard.AuthzRequest) (guard.Verdict, error) {
		if r.Resource != "" {
			sawResource = r.Resource
		}
		if r.Principal.HasRole("banned") {
			return guard.Deny("banned"), nil
		}
		return guard.Abstain(), nil
	}))
	broken := guard.VoterFunc(func(context.Context, *guard.AuthzRequest) (guard.Verdict, error) { panic("boom") })
	g := f.guard(t, guard.Options{Authorizers: []guard.Voter{global}, Matrix: runtime.Matrix{Default: runtime.Deny}})
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, has := guard.PrincipalFrom(r.Context()); has {
			w.Header().Set("X-Principal", "yes")
		}
	})
	mux.Handle("GET /orders/{owner}/cancel", g.Protect(guard.Route{Resource: "order", Voters: []guard.Voter{ownerVoter}}, ok))
	mux.Handle("GET /admin", g.Protect(guard.Route{AllowedRoles: []string{"admin"}, DeniedRoles: []string{"suspended"}}, ok))
	mux.Handle("GET /items", g.Protect(guard.Route{Scopes: []string{"read:employees"}}, ok))
	mux.Handle("GET /broken", g.Protect(guard.Route{AllowedRoles: []string{"admin"}, Voters: []guard.Voter{broken}}, ok))
	mux.Handle("GET /health", g.Protect(guard.Route{Skip: true}, ok))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tok := func(roles ...string) string {
		return f.token(t, map[string]any{ns + "roles": roles, "jti": fmt.Sprint(roles)})
	}
	cases := []struct {
		name, path, token string
		status            int
	}{
		{"owner cancels", "/orders/auth0|alice/cancel", tok(), 200},
		{"not the owner", "/orders/auth0|bob/cancel", tok(), 403},
		{"global authorizer denies first", "/orders/auth0|alice/cancel", tok("banned"), 403},
		{"allowed role", "/admin", tok("admin"), 200},
		{"no allowed role", "/admin", tok("viewer"), 403},
		{"denied role wins under deny precedence", "/admin", tok("admin", "suspended"), 403},
		{"scope granted", "/items", tok(), 200},
		{"no token", "/admin", "", 401},
		{"bad token", "/admin", "x.y.z", 401},
		{"failing voter counts as deny", "/broken", tok("admin"), 403},
		{"skip without token", "/health", "", 200},
		{"skip with bad token", "/health", "x.y.z", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.status == 200 && c.token != "" && c.path != "/health" && res.Header.Get("X-Principal") != "yes" {
				t.Fatal("no principal in the handler's context")
			}
		})
	}
	if sawResource != "order" {
		t.Fatalf("authorizers see the route's resource: %q", sawResource)
	}
	// Scopes missing: insufficient_scope.
	g2 := f.guard(t, guard.Options{})
	_, err := g2.Authorize(bg, &guard.AuthzRequest{Principal: &guard.Principal{}, Route: &guard.Route{Scopes: []string{"x"}}})
	if !errors.Is(err, guard.ErrInsufficientScope) {
		t.Fatalf("scopes: %v", err)
	}
}
