package guard_test

import (
	"slices"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/guard"
)

// TestDefaultClaimPaths: the places Redwood's hasRole looked (root,
// app_metadata, app_metadata.authorization) and the issuers' shapes are
// read by default; user_metadata never is.
func TestDefaultClaimPaths(t *testing.T) {
	paths := guard.DefaultClaimPaths(ns)
	cases := []struct {
		name   string
		claims map[string]any
		want   []string
	}{
		{"namespaced", map[string]any{ns + "roles": []any{"a"}}, []string{"a"}},
		{"bare", map[string]any{"roles": []any{"a"}}, []string{"a"}},
		{"hydra ext", map[string]any{"ext": map[string]any{ns + "roles": []any{"a"}}}, []string{"a"}},
		{"namespaced app_metadata.authorization", map[string]any{ns + "app_metadata": map[string]any{"authorization": map[string]any{"roles": []any{"a"}}}}, []string{"a"}},
		{"app_metadata.authorization", map[string]any{"app_metadata": map[string]any{"authorization": map[string]any{"roles": []any{"a"}}}}, []string{"a"}},
		{"keycloak", map[string]any{"realm_access": map[string]any{"roles": []any{"a"}}}, []string{"a"}},
		{"merged, de-duplicated", map[string]any{ns + "roles": []any{"a", "b"}, "roles": []any{"b", "c"}}, []string{"a", "b", "c"}},
		{"user_metadata is not trusted", map[string]any{"user_metadata": map[string]any{"roles": []any{"admin"}}}, nil},
		{"a string is one role", map[string]any{"roles": "admin editor"}, []string{"admin editor"}},
		{"non-strings skipped", map[string]any{"roles": []any{"a", 1.0, nil, map[string]any{}}}, []string{"a"}},
	}
	for _, c := range cases {
		var got []string
		for _, p := range paths.Roles {
			v, err := guard.Extract(c.claims, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range v {
				if !slices.Contains(got, x) {
					got = append(got, x)
				}
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Scopes: the RFC 9068 string splits, an scp array is read as it is.
	for _, c := range []map[string]any{{"scope": "read  write"}, {"scp": []any{"read", "write"}}} {
		a, err := guard.NewAuthenticator(guard.AuthConfig{Verifier: nil, Introspector: mustIntrospector(t), Paths: paths})
		if err != nil {
			t.Fatal(err)
		}
		p := a.Principal(c)
		if !slices.Equal(p.Scopes, []string{"read", "write"}) {
			t.Errorf("%v: scopes %v", c, p.Scopes)
		}
	}
}

func mustIntrospector(t *testing.T) *guard.Introspector {
	in, err := guard.NewIntrospector(guard.IntrospectionConfig{URL: "http://127.0.0.1:1/introspect", ClientID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return in
}
