package forwardauth_test

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/hooks/forwardauth"
)

// BenchmarkForwardAuthVsVerify alternates, in one loop, one forward-auth
// request over loopback HTTP (keep-alive, as a gateway calls it) and one
// plain ES256 verification of the same token with go-jose, and reports
// forward-auth requests/s ÷ verifications/s as "ratio". cached: the
// endpoint's default verified-token cache serves repeated tokens (the
// gateway case); uncached: every request verifies the signature.
func BenchmarkForwardAuthVsVerify(b *testing.B) {
	for _, c := range []struct{ name, ttl string }{{"cached", "10s"}, {"uncached", "0s"}} {
		b.Run(c.name, func(b *testing.B) {
			cs := newClaimsmith(b)
			h, err := forwardauth.New(config(c.ttl), cs.deps())
			if err != nil {
				b.Fatal(err)
			}
			base := serve(b, h)
			m := cs.mint(b, "auth0|alice", []string{"admin"}, []string{"Staff"}, []string{"employee:read"})
			key, err := forwardauth.TokenKeys{Keys: cs.keys}.Key(bg, m.KeyID)
			if err != nil {
				b.Fatal(err)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			req, _ := http.NewRequest("GET", base+"/hooks/forward-auth", nil)
			req.Header.Set("X-Original-URI", "/admin/users")
			req.Header.Set("Authorization", "Bearer "+m.Token)
			call := func() {
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatalf("status %d", res.StatusCode)
				}
			}
			verify := func() {
				jws, err := jose.ParseSignedCompact(m.Token, []jose.SignatureAlgorithm{jose.ES256})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.Verify(key.Key); err != nil {
					b.Fatal(err)
				}
			}
			call()
			// Slices of each side in turn, so machine noise hits both alike.
			const slice = 50
			var fa, ve, faCPU, veCPU time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += slice {
				n := min(slice, b.N-done)
				t, c := time.Now(), processCPU()
				for range n {
					call()
				}
				fa += time.Since(t)
				faCPU += processCPU() - c
				t, c = time.Now(), processCPU()
				for range n {
					verify()
				}
				ve += time.Since(t)
				veCPU += processCPU() - c
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/fa.Seconds(), "forward-auth/s")
			b.ReportMetric(float64(b.N)/ve.Seconds(), "verify/s")
			b.ReportMetric(float64(ve)/float64(fa), "ratio")
			// By CPU time (gateway-side client, server and GC of this
			// process), which other load on the machine disturbs less.
			b.ReportMetric(float64(veCPU)/float64(faCPU), "cpu-ratio")
		})
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
