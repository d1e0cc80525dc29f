package file_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz/file"
)

// patchAtRate sends n profile patches that each change a profile, open
// loop at rate per second (each in its own goroutine at its due time, as
// concurrent logins arrive), and returns the syncs they cost and how long
// the sending took.
func patchAtRate(t testing.TB, s *file.Store, n int, rate float64) (syncs int64, elapsed time.Duration) {
	t.Helper()
	ctx := context.Background()
	interval := time.Duration(float64(time.Second) / rate)
	before := s.IOStats()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			_, err := s.PatchProfile(ctx, fmt.Sprintf("auth0|user-%03d", i%100), map[string]any{"n": i}, nil)
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed = time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return s.IOStats().Syncs - before.Syncs, elapsed
}

// TestRelaxedSyncsAtThousandPerSecond is issue 15's "a changed profile:
// amortised ≤ 1 fsync per 10 logins at 1,000 logins/s" for the relaxed
// mode: with its default window (10 ms) the journal syncs at most once per
// window, whatever the rate and the disk — at 1,000 changed logins/s that
// is 1 per 10. The assertion is the mechanism's bound over the time the
// sending actually took (a loaded machine stretches it), so it holds on any
// machine; the per-login figure is logged.
func TestRelaxedSyncsAtThousandPerSecond(t *testing.T) {
	s, err := file.Open(context.Background(), t.TempDir(), file.Options{Durability: file.DurabilityRelaxed})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 500
	syncs, elapsed := patchAtRate(t, s, n, 1000)
	const window = 10 * time.Millisecond
	// One sync per window that saw a patch, plus the two directory syncs of
	// the first segment and the window still open at the end.
	bound := int64(elapsed/window) + 4
	t.Logf("%d changed patches in %s: %d syncs, %.3f per patch (bound %d)", n, elapsed.Round(time.Millisecond), syncs, float64(syncs)/n, bound)
	if syncs > bound {
		t.Fatalf("%d syncs in %s: more than one per %s window", syncs, elapsed.Round(time.Millisecond), window)
	}
}

// BenchmarkSyncsAtThousandPerSecond reports the syncs per changed patch at
// 1,000 patches/s in both modes on this machine's disk. In sync mode (the
// default, window 0) a batch is what arrives during one fdatasync: at
// 1,000/s it takes a 10 ms fdatasync to reach 1 sync per 10 patches, so on
// a fast disk nearly every changed login has its own.
//
//	go test ./runtime/authz/file -run '^$' -bench SyncsAtThousand -benchtime 1x
func BenchmarkSyncsAtThousandPerSecond(b *testing.B) {
	for _, mode := range []file.Durability{file.DurabilitySync, file.DurabilityRelaxed} {
		b.Run(string(mode), func(b *testing.B) {
			s, err := file.Open(context.Background(), b.TempDir(), file.Options{Durability: mode})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const n = 1000
			var syncs int64
			for b.Loop() {
				got, _ := patchAtRate(b, s, n, 1000)
				syncs += got
			}
			b.ReportMetric(float64(syncs)/float64(n*b.N), "syncs/patch")
		})
	}
}
