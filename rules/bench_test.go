package rules_test

import (
	"context"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// benchEvent is a realistic post-login event: a user with IdP groups and
// metadata, a client with required_roles, request facts and scopes.
const benchEvent = `{
  "trigger": "post-login",
  "user": {"user_id": "auth0|alice", "email": "alice@example.com", "email_verified": true, "name": "Alice Example",
    "groups": ["CN=Engineers", "CN=VPN Users"], "app_metadata": {"plan": "enterprise", "tenant": "acme"},
    "user_metadata": {"locale": "nl-NL", "theme": "dark"},
    "identities": [{"connection": "corp-ad", "provider": "ad", "user_id": "alice"}], "logins_count": 42},
  "client": {"client_id": "portal", "name": "Portal", "metadata": {"required_roles": "admin, editor"}},
  "connection": {"name": "corp-ad", "strategy": "ad"},
  "request": {"ip": "192.0.2.10", "user_agent": "Mozilla/5.0", "geoip": {"country_code": "NL"}},
  "transaction": {"requested_scopes": ["openid", "profile", "email"], "protocol": "oidc-basic-profile"}
}`

// benchConfig is the three core rules as an extension user configures
// them: lists in the tokens, groups and roles persisted, the client gate,
// plan and tenant copied.
var benchConfig = runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{
	{Rule: "authorization", Config: map[string]any{"persist": map[string]any{"groups": true, "roles": true}}},
	{Rule: "required-roles"},
	{Rule: "copy-metadata-claims", Config: map[string]any{"app_metadata": []any{"plan", "tenant"}}},
}}

// BenchmarkPipeline runs one login through authorization (memory store),
// required-roles and copy-metadata-claims. "rules" is the pipeline alone
// (target ≤ 15 µs, ≤ 60 allocs); "profile-store" adds loading and
// persisting the stored profile in the memory store.
func BenchmarkPipeline(b *testing.B) {
	for _, withProfiles := range []bool{false, true} {
		name := "rules"
		if withProfiles {
			name = "profile-store"
		}
		b.Run(name, func(b *testing.B) {
			store := loadStore(b)
			deps := runtime.Deps{Registry: registry(b, store, time.Now, ns)}
			if withProfiles {
				deps.Profiles = store
			}
			p, err := runtime.NewPipeline(context.Background(), benchConfig, deps)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			ev, err := runtime.DecodeEvent([]byte(benchEvent))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			res, err := p.Run(ctx, ev)
			if err != nil || !res.Decision.Allowed || len(res.AccessTokenClaims) != 4 {
				b.Fatalf("%v %+v", err, res)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for b.Loop() {
				// Run updates the event in place; reset what the previous
				// login added so each iteration is a first run.
				ev.Authorization = nil
				if _, err := p.Run(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkPipelineParallel is BenchmarkPipeline/rules on every core.
func BenchmarkPipelineParallel(b *testing.B) {
	store := loadStore(b)
	p, err := runtime.NewPipeline(context.Background(), benchConfig, runtime.Deps{Registry: registry(b, store, time.Now, ns)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ev, err := runtime.DecodeEvent([]byte(benchEvent))
		if err != nil {
			b.Fatal(err)
		}
		for pb.Next() {
			ev.Authorization = nil
			if _, err := p.Run(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
