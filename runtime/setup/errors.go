package setup

import (
	"errors"
	"fmt"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// Error is a problem in the configuration file, in the one shape every
// section reports: `FILE:LINE: key "a.b.c": reason`. Line is 0 when the
// problem has no place in the file (the file cannot be read); Key is empty
// when it has no key (a YAML syntax error). Err is the cause: it matches
// runtime.ErrInvalid for bad settings, runtime.ErrUnavailable for a backend
// that cannot be reached.
type Error struct {
	File string
	Line int
	Key  string
	// Rule names the pipeline rule entry the key is in ("" outside one).
	Rule string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %q", e.Key)
	}
	b.WriteString(": ")
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	reason := e.Err
	// A pipeline error's own text names the entry and key again.
	var ce *runtime.ConfigError
	if errors.As(reason, &ce) && ce.Err != nil {
		reason = ce.Err
	}
	b.WriteString(oneLine(reason.Error()))
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// invalid is a reason that matches runtime.ErrInvalid.
type invalid struct{ reason string }

func (e *invalid) Error() string        { return e.reason }
func (e *invalid) Is(target error) bool { return target == runtime.ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalid{reason: fmt.Sprintf(format, args...)}
}

// reasonOf is the part of a validation error that is not its location (a
// runtime.ValidationError names its entity and field, which the key already
// says). The result still matches runtime.ErrInvalid.
func reasonOf(err error) error {
	var ve *runtime.ValidationError
	if errors.As(err, &ve) {
		return &invalid{reason: ve.Reason}
	}
	return err
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
