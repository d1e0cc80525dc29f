package js

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"

	"github.com/claimsmith/claimsmith/runtime"
)

// FileReport is the migration check of one rule file.
type FileReport struct {
	Path string `json:"path"`
	Report
	// Err is why the file could not be read or classified.
	Err error `json:"-"`
}

// OK reports whether the file would load: readable, a Rule or an Action,
// and no unsupported API seen.
func (f FileReport) OK() bool { return f.Err == nil && len(f.Unsupported()) == 0 }

// CheckFiles reads each file and lists the Auth0 APIs it uses and whether
// claimsmith supports them (`claimsmith js check`). It does not run the
// code: a syntax error or an API reached only dynamically shows when the
// rule is loaded (`claimsmith check`) or called.
func CheckFiles(paths []string) []FileReport {
	out := make([]FileReport, 0, len(paths))
	for _, p := range paths {
		fr := FileReport{Path: p}
		src, err := readSource(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w: %w", runtime.ErrNotFound, err)
			}
			fr.Err = err
			out = append(out, fr)
			continue
		}
		fr.Report, fr.Err = Analyze(src)
		out = append(out, fr)
	}
	return out
}

// WriteReports prints reports for people: per file its style and one line
// per API, then a verdict.
func WriteReports(w io.Writer, reports []FileReport) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		if r.Err != nil {
			fmt.Fprintf(tw, "%s: error: %v\n", r.Path, r.Err)
			continue
		}
		fmt.Fprintf(tw, "%s: Auth0 %s\n", r.Path, map[Style]string{StyleRules: "Rule", StyleActions: "Action"}[r.Style])
		for _, u := range r.APIs {
			mark := "supported"
			if !u.Supported {
				mark = "UNSUPPORTED"
			}
			fmt.Fprintf(tw, "  line %d\t%s\t%s\t%s\n", u.Line, u.API, mark, u.Note)
		}
		if r.OK() {
			fmt.Fprintf(tw, "  ok: runs unchanged as `js: %s`\n", r.Path)
		} else {
			fmt.Fprintf(tw, "  needs changes: %d unsupported API(s)\n", len(r.Unsupported()))
		}
	}
	return tw.Flush()
}
