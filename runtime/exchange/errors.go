package exchange

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/claimsmith/claimsmith/runtime"
)

// OAuth 2.0 token endpoint error codes (RFC 6749 §5.2, RFC 8693 §2.2.2).
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidTarget        = "invalid_target"
	CodeInvalidScope         = "invalid_scope"
	// CodeAccessDenied is a login the pipeline denied (its own code,
	// access_denied or unauthorized, is used when it names one).
	CodeAccessDenied = "access_denied"
	// CodeSlowDown answers a subject that exchanged too often (429).
	CodeSlowDown = "slow_down"
)

// Error is a refusal the token endpoint answers in RFC 6749 §5.2 form. It
// matches runtime.ErrUnauthenticated (invalid_client), runtime.ErrForbidden
// (a denied login) or runtime.ErrInvalid (every other code), and unwraps to
// its cause.
type Error struct {
	Code        string
	Description string
	Err         error
}

func (e *Error) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is maps the code onto the shared sentinels.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeInvalidClient:
		return target == runtime.ErrUnauthenticated
	case CodeAccessDenied, "unauthorized":
		return target == runtime.ErrForbidden
	default:
		return target == runtime.ErrInvalid
	}
}

// Status is the HTTP status of the answer: 401 for invalid_client, 403 for
// a denied login, 429 for slow_down, 400 otherwise.
func (e *Error) Status() int {
	switch e.Code {
	case CodeInvalidClient:
		return http.StatusUnauthorized
	case CodeAccessDenied, "unauthorized":
		return http.StatusForbidden
	case CodeSlowDown:
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// AsError returns err's *Error, if it has one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
