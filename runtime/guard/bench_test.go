package guard_test

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/runtime/guard"
)

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkMiddlewareWarm is the guard's cost per request once the token's
// principal is cached (JWKS warm, no signature check): bearer parsing, the
// cache lookup (SHA-256 of the token), rule-set and path-rule matching, the
// role check and the principal put into the request context.
func BenchmarkMiddlewareWarm(b *testing.B) {
	f := newFixture(b)
	g := f.guard(b, guard.Options{RuleSets: []guard.RuleSetConfig{{LoginURL: "/login", Rules: []guard.PathRuleConfig{
		{Path: "/login", Public: true},
		{Path: "/public/**", Public: true},
		{Path: "/api/*/items", Methods: []string{"POST"}, Allowed: guard.Allowed{Scopes: []string{"write:employees"}}},
		{Path: "/admin/**", DeniedRoles: []string{"suspended"}, Allowed: guard.Allowed{Roles: []string{"admin"}}},
	}}}})
	tok := f.token(b, map[string]any{ns + "roles": []string{"viewer", "admin"}, ns + "groups": []string{"Staff"}, ns + "permissions": []string{"a:r", "b:w"}})
	r, _ := http.NewRequest("GET", "http://api.example.com/admin/users/42", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("Accept", "application/json")
	reached := 0
	h := g.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ }))
	w := &nopWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // warm the JWKS and the principal cache
	if reached != 1 {
		b.Fatal("not allowed")
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	// CPU time too: on a shared machine wall time includes waiting for a core.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	if reached < 2 {
		b.Fatal("not allowed")
	}
}

// BenchmarkAuthenticateCold verifies a fresh ES256 token each time (no
// principal cache): signature, claims decoding and claim paths.
func BenchmarkAuthenticateCold(b *testing.B) {
	f := newFixture(b, func(ac *guard.AuthConfig, _ *guard.VerifierConfig) { ac.CacheTTL = -1 })
	tok := f.token(b, map[string]any{ns + "roles": []string{"viewer", "admin"}, ns + "groups": []string{"Staff"}, ns + "permissions": []string{"a:r", "b:w"}})
	if _, err := f.auth.Authenticate(bg, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.auth.Authenticate(bg, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256VerifyPlain is the floor: go-jose parses and verifies the
// same token, nothing else.
func BenchmarkES256VerifyPlain(b *testing.B) {
	f := newFixture(b)
	tok := f.token(b, map[string]any{ns + "roles": []string{"viewer", "admin"}, ns + "groups": []string{"Staff"}, ns + "permissions": []string{"a:r", "b:w"}})
	pub := &f.key.priv.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jws.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
