package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/claimsmith/claimsmith/runtime/authz
cpu: test
BenchmarkResolve-2              	  300000	      4000 ns/op	    1408 B/op	       1 allocs/op
BenchmarkResolve-2              	  300000	      6000 ns/op	    1408 B/op	       1 allocs/op
BenchmarkResolve-2              	  300000	      5000 ns/op	    1408 B/op	       1 allocs/op
BenchmarkResolveUsers/users=1000-2      	  300000	      3000 ns/op
BenchmarkResolveUsers/users=100000-2    	  300000	      3300 ns/op
BenchmarkResolveUsers/users=1000#01-2   	  300000	      3000 ns/op
pkg: github.com/claimsmith/claimsmith/runtime/token
BenchmarkMintVsRawSign/ES256-2  	   10000	    120000 ns/op	    110000 raw-ns/pair	    115000 mint-ns/pair	         1.05 mint/raw
`

func TestParseAndRows(t *testing.T) {
	all := map[string]*result{}
	if err := parse(strings.NewReader(sample), all); err != nil {
		t.Fatal(err)
	}
	r, name := find(all, "/authz.BenchmarkResolve")
	if r == nil || name != "github.com/claimsmith/claimsmith/runtime/authz.BenchmarkResolve" {
		t.Fatalf("find: %q", name)
	}
	if m, _ := r.median("ns/op"); m != 5000 {
		t.Fatalf("median ns/op = %v, want 5000", m)
	}
	users, _ := find(all, "/authz.BenchmarkResolveUsers/users=1000")
	if len(users.nsPerOp) != 2 {
		t.Fatalf("repeated rounds must merge into one benchmark: %v", users.nsPerOp)
	}
	var out bytes.Buffer
	missing := printTable(&out, all, []row{
		{id: "A", what: "value", kind: "value", num: "/authz.BenchmarkResolve", scale: 1e-3, unit: "µs", target: 20, atMost: true},
		{id: "B", what: "ratio", kind: "ratio", num: "/authz.BenchmarkResolveUsers/users=100000", den: "/authz.BenchmarkResolveUsers/users=1000", target: 1.2, atMost: true},
		{id: "C", what: "metric", kind: "metric", num: "/token.BenchmarkMintVsRawSign/ES256", metric: "mint/raw", target: 1.1, atMost: true},
		{id: "D", what: "absent", kind: "value", num: "/nothing.BenchmarkX", target: 1},
	})
	got := out.String()
	for _, want := range []string{"5.000µs", "1.100×", "1.050×", "missing"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if missing != 1 {
		t.Fatalf("missing = %d, want 1", missing)
	}
}

// TestServeRows: the P1/P2 rows read the serve-built benchmarks of
// runtime/setup, the memory-store rows read the hand-built one wherever
// it lives (hooks/login), and the fsync row is printed as context
// without a verdict.
func TestServeRows(t *testing.T) {
	const in = `pkg: github.com/claimsmith/claimsmith/runtime/setup
BenchmarkServeLoginRatio/ES256-2   300  552171 ns/op  0.81 cpu-ratio  5591 fsync-µs  0.82 ratio
BenchmarkServeLoginHandlerRatio/ES256-2   300  552171 ns/op  0.85 cpu-ratio  0.84 ratio
pkg: github.com/claimsmith/claimsmith/hooks/login
BenchmarkNativeLoginRatio/ES256-2  300  400000 ns/op  0.93 cpu-ratio  0.92 ratio
`
	all := map[string]*result{}
	if err := parse(strings.NewReader(in), all); err != nil {
		t.Fatal(err)
	}
	var sel []row
	for _, r := range rows() {
		switch r.id {
		case "P1", "P1c", "P1h", "P1m", "D1":
			sel = append(sel, r)
		}
	}
	if len(sel) != 5 {
		t.Fatalf("rows P1, P1c, P1h, P1m, D1: found %d", len(sel))
	}
	var out bytes.Buffer
	if missing := printTable(&out, all, sel); missing != 0 {
		t.Fatalf("%d missing:\n%s", missing, out.String())
	}
	for _, want := range []string{"0.820×", "0.810×", "0.850×", "0.920×", "5591.000µs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "D1") && (strings.Contains(line, "yes") || strings.Contains(line, "NO")) {
			t.Errorf("the fsync row has a verdict: %s", line)
		}
	}
}
