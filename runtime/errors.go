package runtime

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every layer. Check them with errors.Is; the one
// place that writes HTTP responses (hooks) maps them to status codes.
var (
	ErrNotFound        = errors.New("not found")
	ErrInvalid         = errors.New("invalid")
	ErrExists          = errors.New("already exists")
	ErrConflict        = errors.New("conflict")
	ErrInUse           = errors.New("in use")
	ErrTooLarge        = errors.New("too large")
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
	ErrUnavailable     = errors.New("unavailable")
	ErrTimeout         = errors.New("timeout")
	// ErrPanic marks a rule that panicked (the pipeline recovered it).
	ErrPanic = errors.New("panic")
	// ErrDegraded marks a dependency that failed while its configured
	// availability policy lets the login go on without it (a Redis store
	// with on_unavailable: last_snapshot); the answer names what was
	// missing (Result.Degraded) instead of failing.
	ErrDegraded = errors.New("degraded")
)

// ValidationError names what was wrong with an input: the entity, its id and
// the field. It matches ErrInvalid.
type ValidationError struct {
	Entity string // e.g. "group", "role", "rule"
	ID     string // the entity's _id, rule entry, or "" when it has none
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	s := e.Entity
	if e.ID != "" {
		s += fmt.Sprintf(" %q", e.ID)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Reason
}

// Is reports ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ConflictError is an optimistic-concurrency failure: the caller expected one
// store revision and found another. It matches ErrConflict.
type ConflictError struct {
	Expected, Actual uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("revision conflict: expected %d, store is at %d", e.Expected, e.Actual)
}

// Is reports ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// RuleError is a failure of one rule: an error, a panic, a trap, a timeout or
// bad output. It names the rule and unwraps to the cause.
type RuleError struct {
	Rule  string
	Cause error
}

func (e *RuleError) Error() string { return fmt.Sprintf("rule %q: %v", e.Rule, e.Cause) }

// Unwrap returns the cause.
func (e *RuleError) Unwrap() error { return e.Cause }

// ruleError names rule in err once: WebAssembly and JavaScript rules
// return a *RuleError naming themselves already, and wrapping it again
// printed `rule "x": rule "x": …` in the trace.
func ruleError(rule string, err error) error {
	if re, ok := errors.AsType[*RuleError](err); ok && re.Rule == rule {
		return err
	}
	return &RuleError{Rule: rule, Cause: err}
}
