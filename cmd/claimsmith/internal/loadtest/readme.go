package loadtest

import (
	"bytes"
	"fmt"
)

// The README's Performance section holds the latest load test between two
// markers; `claimsmith loadtest --readme README.md` rewrites what lies
// between them (markers kept), so the numbers in the README are always a
// whole report of one run with the command that made it, never hand-copied.
const (
	ReadmeBegin = "<!-- loadtest-report: begin (written by claimsmith loadtest --readme; do not edit by hand) -->"
	ReadmeEnd   = "<!-- loadtest-report: end -->"
)

// ReplaceReadmeBlock returns readme with the text between ReadmeBegin and
// ReadmeEnd replaced by block. Both markers must be there once, in order.
func ReplaceReadmeBlock(readme []byte, block string) ([]byte, error) {
	b := bytes.Index(readme, []byte(ReadmeBegin))
	e := bytes.Index(readme, []byte(ReadmeEnd))
	switch {
	case b < 0 || e < 0:
		return nil, fmt.Errorf("no load test block: the file needs the lines %q and %q", ReadmeBegin, ReadmeEnd)
	case e < b:
		return nil, fmt.Errorf("the load test block's end marker comes before its begin marker")
	case bytes.Count(readme, []byte(ReadmeBegin)) > 1 || bytes.Count(readme, []byte(ReadmeEnd)) > 1:
		return nil, fmt.Errorf("more than one load test block")
	}
	var out bytes.Buffer
	out.Write(readme[:b+len(ReadmeBegin)])
	out.WriteString("\n")
	out.WriteString(block)
	if len(block) > 0 && block[len(block)-1] != '\n' {
		out.WriteString("\n")
	}
	out.Write(readme[e:])
	return out.Bytes(), nil
}
