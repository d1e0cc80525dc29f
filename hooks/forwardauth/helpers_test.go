package forwardauth_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks/forwardauth"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenfile "github.com/claimsmith/claimsmith/runtime/token/file"
)

const (
	ns       = "https://example.com/"
	issuer   = "https://auth.example.com"
	audience = "https://api.example.com/"
)

var bg = context.Background()

// claimsmith is the token side of a claimsmith node: its key set (ES256,
// file store), minter and revocation list.
type claimsmith struct {
	keys    *token.KeySet
	minter  *token.Minter
	revoked *tokenfile.RevocationList
}

func newClaimsmith(t testing.TB) *claimsmith {
	t.Helper()
	dir := t.TempDir()
	store, err := tokenfile.NewKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	c := &claimsmith{}
	if c.keys, err = token.NewKeySet(store, token.KeySetConfig{Algorithm: token.ES256}, time.Now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if err := c.keys.Init(bg); err != nil {
		t.Fatal(err)
	}
	if c.minter, err = token.NewMinter(c.keys, token.MinterConfig{Issuer: issuer}, time.Now); err != nil {
		t.Fatal(err)
	}
	if c.revoked, err = tokenfile.OpenRevocationList(bg, filepath.Join(dir, "revoked.jsonl"), time.Now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.revoked.Close() })
	return c
}

// mint returns an access token with namespaced roles, groups and permissions.
func (c *claimsmith) mint(t testing.TB, sub string, roles, groups, perms []string) token.Minted {
	t.Helper()
	var cl runtime.Claims
	cl.Set(ns+"roles", roles)
	cl.Set(ns+"groups", groups)
	cl.Set(ns+"permissions", perms)
	m, err := c.minter.MintAccessToken(bg, token.AccessTokenRequest{Subject: sub, ClientID: "portal", Audience: audience, Scopes: []string{"openid", "read:employees"}, Claims: cl})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (c *claimsmith) deps() forwardauth.Deps {
	return forwardauth.Deps{Issuer: issuer, Keys: forwardauth.TokenKeys{Keys: c.keys}, Revocations: c.revoked}
}

// rules are the path rules of the tests: an admin area, an API and a
// public area, login at /login.
func rules() []guard.RuleSetConfig {
	return []guard.RuleSetConfig{{LoginURL: "/login", Rules: []guard.PathRuleConfig{
		{Path: "/login", Public: true},
		{Path: "/public/**", Public: true},
		{Path: "/admin/**", Allowed: guard.Allowed{Roles: []string{"admin"}}},
		{Path: "/api/**", Allowed: guard.Allowed{Permissions: []string{"employee:read"}}},
	}}}
}

func config(ttl string) forwardauth.Config {
	return forwardauth.Config{Enabled: true, Audiences: []string{audience}, Namespace: ns, Cookie: "access_token", CacheTTL: ttl, RuleSets: rules()}
}

// serve runs h on a loopback port until the test ends.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
