package main

import (
	"fmt"
	"io"
)

// row is one line of the ratio table. Its value is, by kind:
//   - ratio: median metric of num ÷ median metric of den (both benchmarks of
//     the same run); with invert, den ÷ num (a time ratio turned into a
//     throughput ratio);
//   - metric: the median of a custom metric num reports itself (the paired
//     benchmarks that alternate both sides inside one loop report their
//     ratio this way);
//   - value: num's median metric, scaled by scale, in unit.
type row struct {
	id, what string
	kind     string
	num, den string // benchmark name suffixes ("pkg.BenchmarkName/sub")
	metric   string // "ns/op" when empty
	invert   bool
	scale    float64 // value rows: multiply by this (e.g. 1e-3 for ns → µs)
	unit     string
	target   float64
	atMost   bool // the target is an upper bound (else a lower bound)
	info     bool // no target: context for the other rows (e.g. the disk's fsync latency)
}

// rows is the harness's table: the issue-9 rows first (P1…P6, mint, introspect),
// then the per-capability targets of the other issues.
func rows() []row {
	return []row{
		// P1/P2: claimsmith as serve builds it (runtime/setup over the sample
		// config: file store, persist on, metrics, default logging) ÷ floor.
		{id: "P1", what: "login ÷ floor, ES256, HTTP, as serve builds it (wall)", kind: "metric", num: "/setup.BenchmarkServeLoginRatio/ES256", metric: "ratio", target: 0.80},
		{id: "P1c", what: "login ÷ floor, ES256, HTTP, as serve builds it (CPU)", kind: "metric", num: "/setup.BenchmarkServeLoginRatio/ES256", metric: "cpu-ratio", target: 0.80},
		{id: "P1h", what: "login ÷ floor, ES256, handler only (no network, CPU)", kind: "metric", num: "/setup.BenchmarkServeLoginHandlerRatio/ES256", metric: "cpu-ratio", target: 0.80},
		{id: "P1m", what: "login ÷ floor, ES256, HTTP, memory store, no persist (wall)", kind: "metric", num: "/login.BenchmarkNativeLoginRatio/ES256", metric: "ratio", target: 0.90},
		{id: "P2", what: "login ÷ floor, RS256, HTTP, as serve builds it (wall)", kind: "metric", num: "/setup.BenchmarkServeLoginRatio/RS256", metric: "ratio", target: 0.95},
		{id: "P2c", what: "login ÷ floor, RS256, HTTP, as serve builds it (CPU)", kind: "metric", num: "/setup.BenchmarkServeLoginRatio/RS256", metric: "cpu-ratio", target: 0.95},
		{id: "P2h", what: "login ÷ floor, RS256, handler only (no network, CPU)", kind: "metric", num: "/setup.BenchmarkServeLoginHandlerRatio/RS256", metric: "cpu-ratio", target: 0.95},
		{id: "P2m", what: "login ÷ floor, RS256, HTTP, memory store, no persist (wall)", kind: "metric", num: "/login.BenchmarkNativeLoginRatio/RS256", metric: "ratio", target: 0.95},
		{id: "D1", what: "data dir fdatasync latency (beside P1/P2), µs", kind: "value", num: "/setup.BenchmarkServeLoginRatio/ES256", metric: "fsync-µs", scale: 1, unit: "µs", info: true},
		{id: "P4a", what: "WASM rule, WAT sample, µs/login", kind: "value", num: "/wasm.BenchmarkLogin/wat/deny-blocked-ips", scale: 1e-3, unit: "µs", target: 50, atMost: true},
		{id: "P4b", what: "WASM rule, AssemblyScript sample, µs/login", kind: "value", num: "/wasm.BenchmarkLogin/assemblyscript/add-tenant-claim", scale: 1e-3, unit: "µs", target: 50, atMost: true},
		{id: "P4c", what: "WASM rule, Go SDK sample (pooled), µs/login", kind: "value", num: "/wasm.BenchmarkLogin/go/weekday-only/pooled", scale: 1e-3, unit: "µs", target: 250, atMost: true},
		{id: "P4d", what: "WASM Go rule: instantiate-per-call ÷ pooled", kind: "ratio", num: "/wasm.BenchmarkLogin/go/weekday-only/instance-per-call", den: "/wasm.BenchmarkLogin/go/weekday-only/pooled", target: 20},
		{id: "P5a", what: "policy resolution, uncached (100k users), µs", kind: "value", num: "/authz.BenchmarkResolve", scale: 1e-3, unit: "µs", target: 20, atMost: true},
		{id: "P5b", what: "policy resolution, near-cache hit, µs", kind: "value", num: "/cache.BenchmarkNearHit", scale: 1e-3, unit: "µs", target: 1, atMost: true},
		{id: "P5c", what: "policy resolution, Redis store, cache miss, µs", kind: "value", num: "/redis.BenchmarkResolvePolicy", scale: 1e-3, unit: "µs", target: 200, atMost: true},
		{id: "P6", what: "Redis store resolution: 100k ÷ 1k users (1M with -redis.big)", kind: "ratio", num: "/redis.BenchmarkResolveUsers/users=100000", den: "/redis.BenchmarkResolveUsers/users=1000", target: 1.2, atMost: true},
		{id: "P6m", what: "file/memory model resolution: 100k ÷ 1k users", kind: "ratio", num: "/authz.BenchmarkResolveUsers/users=100k", den: "/authz.BenchmarkResolveUsers/users=1k", target: 1.2, atMost: true},
		{id: "P3", what: "Hydra token endpoint p50: with claimsmith hook ÷ without", kind: "metric", num: "/e2e.BenchmarkHydraTokenHook", metric: "p50-ratio", target: 1.3, atMost: true},
		{id: "T1", what: "mint ID+access ÷ raw Signer.Sign, RS256", kind: "metric", num: "/token.BenchmarkMintVsRawSign/RS256", metric: "mint/raw", target: 1.10, atMost: true},
		{id: "T2", what: "mint ID+access ÷ raw Signer.Sign, ES256", kind: "metric", num: "/token.BenchmarkMintVsRawSign/ES256", metric: "mint/raw", target: 1.10, atMost: true},
		{id: "T3", what: "mint ID+access ÷ raw Signer.Sign, EdDSA", kind: "metric", num: "/token.BenchmarkMintVsRawSign/EdDSA", metric: "mint/raw", target: 1.10, atMost: true},
		{id: "T4", what: "mint ID+access ÷ raw Signer.Sign, PS256", kind: "metric", num: "/token.BenchmarkMintVsRawSign/PS256", metric: "mint/raw", target: 1.10, atMost: true},
		{id: "T5", what: "introspect (active, not live) ÷ verify, ES256", kind: "metric", num: "/token.BenchmarkIntrospectVsVerify/ES256", metric: "introspect/verify", target: 1.3, atMost: true},
		{id: "T6", what: "introspect (active, not live) ÷ verify, RS256", kind: "metric", num: "/token.BenchmarkIntrospectVsVerify/RS256", metric: "introspect/verify", target: 1.3, atMost: true},
		{id: "R1", what: "pipeline, 3 built-in rules, µs/login", kind: "value", num: "/rules.BenchmarkPipeline/rules", scale: 1e-3, unit: "µs", target: 15, atMost: true},
		{id: "G1", what: "guard middleware per request, warm cache, µs", kind: "value", num: "/guard.BenchmarkMiddlewareWarm", scale: 1e-3, unit: "µs", target: 5, atMost: true},
		{id: "G1c", what: "guard middleware per request, warm cache, CPU µs", kind: "value", num: "/guard.BenchmarkMiddlewareWarm", metric: "cpu-ns/op", scale: 1e-3, unit: "µs", target: 5, atMost: true},
		{id: "G1a", what: "guard middleware per request, warm cache, allocs", kind: "value", num: "/guard.BenchmarkMiddlewareWarm", metric: "allocs/op", scale: 1, unit: "", target: 10, atMost: true},
		{id: "G2", what: "forward-auth req/s ÷ plain ES256 verify/s (cached, wall)", kind: "metric", num: "/forwardauth.BenchmarkForwardAuthVsVerify/cached", metric: "ratio", target: 0.7},
		{id: "G2c", what: "forward-auth req/s ÷ plain ES256 verify/s (cached, CPU)", kind: "metric", num: "/forwardauth.BenchmarkForwardAuthVsVerify/cached", metric: "cpu-ratio", target: 0.7},
	}
}

func (r row) value(all map[string]*result) (float64, bool) {
	metric := r.metric
	if metric == "" {
		metric = "ns/op"
	}
	n, _ := find(all, r.num)
	if n == nil {
		return 0, false
	}
	nv, ok := n.median(metric)
	if !ok {
		return 0, false
	}
	switch r.kind {
	case "ratio":
		d, _ := find(all, r.den)
		if d == nil {
			return 0, false
		}
		dv, ok := d.median(metric)
		if !ok || dv == 0 || nv == 0 {
			return 0, false
		}
		if r.invert {
			return dv / nv, true
		}
		return nv / dv, true
	case "value":
		return nv * r.scale, true
	default:
		return nv, true
	}
}

func printTable(w io.Writer, all map[string]*result, rs []row) int {
	missing := 0
	fmt.Fprintf(w, "%-4s %-62s %12s %9s  %s\n", "row", "what", "value", "target", "met")
	for _, r := range rs {
		v, ok := r.value(all)
		if !ok {
			missing++
			fmt.Fprintf(w, "%-4s %-62s %12s %9s  %s\n", r.id, r.what, "missing", fmtTarget(r), "-")
			continue
		}
		if r.info {
			fmt.Fprintf(w, "%-4s %-62s %10.3f%-2s %9s  %s\n", r.id, r.what, v, r.unit, "-", "-")
			continue
		}
		met := v >= r.target
		if r.atMost {
			met = v <= r.target
		}
		unit := "×"
		if r.kind == "value" {
			unit = r.unit
		}
		verdict := "yes"
		if !met {
			verdict = "NO"
		}
		fmt.Fprintf(w, "%-4s %-62s %10.3f%-2s %9s  %s\n", r.id, r.what, v, unit, fmtTarget(r), verdict)
	}
	return missing
}

func fmtTarget(r row) string {
	op := "≥"
	if r.atMost {
		op = "≤"
	}
	return fmt.Sprintf("%s%g", op, r.target)
}
