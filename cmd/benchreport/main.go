// Command benchreport reads `go test -bench` output (the raw files `make
// bench` writes) and prints the ratio table of the performance harness.
// Every ratio compares two benchmarks of the same run, so a noisy shared
// machine shifts both sides alike. Medians over -count repetitions are used.
//
// Usage: benchreport [-targets] FILE...
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// result holds every measurement of one benchmark name.
type result struct {
	nsPerOp     []float64
	bytesPerOp  []float64
	allocsPerOp []float64
	extra       map[string][]float64 // custom metrics (b.ReportMetric)
}

var repeatSuffix = regexp.MustCompile(`#\d+$`)

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// parse reads benchmark lines; the package path printed by `go test` in
// "pkg:" lines prefixes each name so equal names in two packages differ.
func parse(r io.Reader, into map[string]*result) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pkg := ""
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		// Sub-benchmarks run in several rounds are numbered "#01", "#02":
		// they are repetitions of the same measurement.
		name := pkg + "." + repeatSuffix.ReplaceAllString(m[1], "")
		res := into[name]
		if res == nil {
			res = &result{extra: map[string][]float64{}}
			into[name] = res
		}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch unit := fields[i+1]; unit {
			case "ns/op":
				res.nsPerOp = append(res.nsPerOp, v)
			case "B/op":
				res.bytesPerOp = append(res.bytesPerOp, v)
			case "allocs/op":
				res.allocsPerOp = append(res.allocsPerOp, v)
			default:
				res.extra[unit] = append(res.extra[unit], v)
			}
		}
	}
	return sc.Err()
}

// median returns the median of a metric over the repetitions.
func (r *result) median(metric string) (float64, bool) {
	var v []float64
	switch metric {
	case "ns/op":
		v = r.nsPerOp
	case "B/op":
		v = r.bytesPerOp
	case "allocs/op":
		v = r.allocsPerOp
	default:
		v = r.extra[metric]
	}
	if len(v) == 0 {
		return 0, false
	}
	return median(v), true
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// find returns the benchmark whose "pkg.Name" ends with suffix (the package
// path's last element and the benchmark name), the shortest such name.
func find(all map[string]*result, suffix string) (*result, string) {
	var hit *result
	name := ""
	for n, r := range all {
		if strings.HasSuffix(n, suffix) && (hit == nil || len(n) < len(name)) {
			hit, name = r, n
		}
	}
	return hit, name
}

func main() {
	fs := flag.NewFlagSet("benchreport", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: benchreport FILE...\n\nPrints the ratio table of claimsmith's performance harness from raw `go test -bench` output.\n")
		fs.PrintDefaults()
	}
	smoke := fs.Bool("smoke", false, "the input is a smoke run (-benchtime 1x): say that its values are not measurements")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	all := map[string]*result{}
	for _, f := range fs.Args() {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		err = parse(fh, all)
		fh.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %s: %v\n", f, err)
			os.Exit(1)
		}
	}
	if *smoke {
		fmt.Fprintln(os.Stdout, "smoke run: every benchmark ran once; the values below only show the harness works, they are not measurements (make bench).")
	}
	missing := printTable(os.Stdout, all, rows())
	if missing > 0 {
		fmt.Fprintf(os.Stdout, "\n%d row(s) had no measurement: the benchmark named in the row did not run.\n", missing)
	}
}
