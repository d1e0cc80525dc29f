package guard

import (
	"errors"
	"fmt"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// Reasons a request is not authenticated or not allowed. The typed errors
// below wrap them; check with errors.Is.
var (
	// ErrNoToken: the request carries no bearer token.
	ErrNoToken = errors.New("no bearer token")
	// ErrInvalidToken: the token failed verification or introspection.
	ErrInvalidToken = errors.New("invalid token")
	// ErrUnknownKey: no key of the issuer's JWKS has the token's kid.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrMalformedRequest: the Authorization header is not a bearer header.
	ErrMalformedRequest = errors.New("malformed authorization")
	// ErrNotAllowed: authenticated, but the rules or voters refuse.
	ErrNotAllowed = errors.New("not allowed")
	// ErrInsufficientScope: authenticated, but a required scope is missing.
	ErrInsufficientScope = errors.New("insufficient scope")
)

// RFC 6750 §3.1 error codes for WWW-Authenticate.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// AuthError is "not authenticated": HTTP 401 with WWW-Authenticate: Bearer.
// Code is the RFC 6750 error code ("" when the request had no token at all,
// as §3.1 asks). It matches runtime.ErrUnauthenticated and its Reason.
type AuthError struct {
	Code   string
	Reason error
	Detail string
}

func (e *AuthError) Error() string {
	s := "unauthenticated: " + e.Reason.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the reason.
func (e *AuthError) Unwrap() error { return e.Reason }

// Is reports runtime.ErrUnauthenticated.
func (e *AuthError) Is(target error) bool { return target == runtime.ErrUnauthenticated }

func invalidToken(reason error, format string, args ...any) *AuthError {
	return &AuthError{Code: CodeInvalidToken, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ForbiddenError is "authenticated, not allowed": HTTP 403. Scopes lists the
// missing scopes of an insufficient_scope refusal. Voter names what decided.
// It matches runtime.ErrForbidden and its Reason (ErrNotAllowed or
// ErrInsufficientScope).
type ForbiddenError struct {
	Reason error
	Detail string
	Voter  string
	Scopes []string
}

func (e *ForbiddenError) Error() string {
	s := "forbidden: " + e.Reason.Error()
	if e.Voter != "" {
		s += " by " + e.Voter
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the reason.
func (e *ForbiddenError) Unwrap() error { return e.Reason }

// Is reports runtime.ErrForbidden.
func (e *ForbiddenError) Is(target error) bool { return target == runtime.ErrForbidden }

// challenge builds the WWW-Authenticate value (RFC 6750 §3). Quoted values
// never carry a quote or backslash: they are replaced.
func challenge(realm string, err error) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	add := func(k, v string) {
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(quoteSafe(v))
		b.WriteByte('"')
		sep = ", "
	}
	if realm != "" {
		add("realm", realm)
	}
	var ae *AuthError
	var fe *ForbiddenError
	switch {
	case errors.As(err, &ae) && ae.Code != "":
		add("error", ae.Code)
		add("error_description", ae.Reason.Error())
	case errors.As(err, &fe) && errors.Is(fe.Reason, ErrInsufficientScope):
		add("error", CodeInsufficientScope)
		add("scope", strings.Join(fe.Scopes, " "))
	}
	return b.String()
}

// quoteSafe keeps the RFC 6750 allowed characters (%x20-21 / %x23-5B / %x5D-7E).
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}
