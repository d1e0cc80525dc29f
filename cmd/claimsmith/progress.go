package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progressThreshold is the size from which import and export report
// progress; smaller files finish before a bar would be readable.
const progressThreshold = 1 << 20

// progress reports bytes moved: a redrawn bar when w is a terminal, plain
// lines (at most one per quarter) otherwise, nothing for small inputs.
type progress struct {
	w      io.Writer
	label  string
	total  int64 // 0 when unknown (stdin)
	done   int64
	tty    bool
	now    func() time.Time
	last   time.Time
	shown  bool
	marked int // last quarter reported in plain mode
}

func newProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, total: total, now: time.Now}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// Add records n more bytes.
func (p *progress) Add(n int) {
	p.done += int64(n)
	if p.done < progressThreshold && p.total < progressThreshold {
		return
	}
	t := p.now()
	if p.tty {
		if t.Sub(p.last) < 100*time.Millisecond && p.done != p.total {
			return
		}
		p.last, p.shown = t, true
		fmt.Fprintf(p.w, "\r%s", p.bar())
		return
	}
	if p.total > 0 {
		q := int(p.done * 4 / p.total)
		if q > p.marked && q < 4 {
			p.marked = q
			fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.label, q*25, size(p.done), size(p.total))
		}
		return
	}
	if t.Sub(p.last) >= 2*time.Second {
		p.last = t
		fmt.Fprintf(p.w, "%s: %s\n", p.label, size(p.done))
	}
}

func (p *progress) bar() string {
	if p.total <= 0 {
		return fmt.Sprintf("%s %s", p.label, size(p.done))
	}
	const width = 30
	filled := int(p.done * width / p.total)
	if filled > width {
		filled = width
	}
	return fmt.Sprintf("%s [%s%s] %3d%% %s/%s", p.label, strings.Repeat("#", filled), strings.Repeat(" ", width-filled),
		p.done*100/p.total, size(p.done), size(p.total))
}

// Step prints a phase note (validating, committing) for large inputs.
func (p *progress) Step(msg string) {
	if p.done < progressThreshold {
		return
	}
	p.Done()
	fmt.Fprintf(p.w, "%s: %s\n", p.label, msg)
}

// Done ends the bar's line.
func (p *progress) Done() {
	if p.tty && p.shown {
		fmt.Fprintf(p.w, "\r%s\n", p.bar())
		p.shown = false
	}
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progressReader counts bytes read into a progress.
type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.Add(n)
	return n, err
}

// progressWriter counts bytes written into a progress.
type progressWriter struct {
	w io.Writer
	p *progress
}

func (w *progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.p.Add(n)
	return n, err
}
