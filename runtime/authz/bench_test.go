package authz_test

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
)

// models caches generated models per user count: generating 100,000 users
// takes seconds and every benchmark of a run shares them.
var models sync.Map // int → func() *authz.Model

func benchModel(users int) *authz.Model {
	f, _ := models.LoadOrStore(users, sync.OnceValue(func() *authz.Model {
		return authz.NewModel(authzgen.Generate(authzgen.BenchSpec(users)), 1)
	}))
	return f.(func() *authz.Model)()
}

// BenchmarkResolve: 10,000 groups nested up to 5 levels, 1,000 roles,
// 100,000 users; the user is in 10 groups, has 2 mapped IdP groups, 2 direct
// roles and an API audience. Target ≤ 20 µs/op.
func BenchmarkResolve(b *testing.B) {
	m := benchModel(100000)
	q := authzgen.BenchQuery()
	p := m.Resolve(q)
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		m.Resolve(q)
	}
	cpu.report(b)
	b.ReportMetric(float64(len(p.Groups)), "groups")
	b.ReportMetric(float64(len(p.Roles)), "roles")
	b.ReportMetric(float64(len(p.Permissions)), "perms")
}

// BenchmarkResolveUsers resolves the same user (same groups, same work) in
// models of 1,000 and 100,000 users: the cost must not grow with the model
// (ratio ≤ 1.2).
func BenchmarkResolveUsers(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run("users="+itoa(n), func(b *testing.B) {
			m := benchModel(n)
			q := authzgen.BenchQuery()
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				m.Resolve(q)
			}
			cpu.report(b)
		})
	}
}

// BenchmarkResolveParallel is the login path under concurrency: the model is
// shared read-only by every goroutine.
func BenchmarkResolveParallel(b *testing.B) {
	m := benchModel(100000)
	q := authzgen.BenchQuery()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Resolve(q)
		}
	})
}

// BenchmarkLoadFileStore100k measures opening the file store holding the
// 100,000-user model (read, decode, index: ns/op is the load time) and the
// heap the loaded model keeps (heap-MiB, after GC; target ≤ 150 MiB).
func BenchmarkLoadFileStore100k(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := file.Open(ctx, dir, file.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authzgen.Generate(authzgen.BenchSpec(100000))}); err != nil {
		b.Fatal(err)
	}
	st.Close()
	st = nil
	var heap, live float64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		s, err := file.Open(ctx, dir, file.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / (1 << 20)
		live = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
		runtime.KeepAlive(s)
		b.StartTimer()
	}
	b.ReportMetric(heap, "heap-inuse-MiB")
	b.ReportMetric(live, "live-heap-MiB")
}

// TestModelFootprint logs the 100,000-user model's load time (decode the
// export + build the indexes) and the heap the loaded model keeps after GC.
// Run: go test -run Footprint -v ./runtime/authz/ (skipped with -short and
// -race: it generates the model). It fails above 150 MiB.
func TestModelFootprint(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("generates a 100,000-user model; run without -short and -race")
	}
	var buf bytes.Buffer
	if err := authz.Encode(&buf, authzgen.Generate(authzgen.BenchSpec(100000)), authz.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	var before, decoded, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	start, cpu0 := time.Now(), processCPU()
	doc, err := authz.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	decode, cpuDecode := time.Since(start), processCPU()-cpu0
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&decoded)
	start, cpu0 = time.Now(), processCPU()
	m := authz.NewModel(doc, 1)
	index, cpuIndex := time.Since(start), processCPU()-cpu0
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	docMiB := float64(decoded.HeapAlloc-before.HeapAlloc) / (1 << 20)
	totalMiB := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	t.Logf("100,000 users, %d groups, %d roles, export %.1f MiB: decode %v (cpu %v), index %v (cpu %v); heap after GC: document %.1f MiB + indexes %.1f MiB = %.1f MiB",
		len(doc.Groups), len(doc.Roles), float64(len(raw))/(1<<20), decode, cpuDecode, index, cpuIndex, docMiB, totalMiB-docMiB, totalMiB)
	if totalMiB > 150 {
		t.Errorf("loaded model keeps %.1f MiB, target ≤ 150 MiB", totalMiB)
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(raw)
}

func itoa(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return itoa(n/1000) + "k"
	}
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// cpuClock measures the process's CPU time (user+system) over a benchmark
// loop. On a shared machine wall time per op includes the time other
// processes held the CPU; cpu-ns/op does not.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

func (c cpuClock) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
	}
}
