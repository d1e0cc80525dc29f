package exchange

import (
	"mime"
	"net/url"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// Grant types and token type identifiers (RFC 8693 §3).
const (
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantClientCredentials = "client_credentials"

	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// MaxBody bounds a token request: two upstream tokens (subject and actor,
// each at most guard.MaxTokenBytes) and the rest of the form.
const MaxBody = 160 << 10

// Request is a decoded POST /oauth2/token form.
type Request struct {
	GrantType          string
	SubjectToken       string
	SubjectTokenType   string
	ActorToken         string
	ActorTokenType     string
	RequestedTokenType string
	// Audience and Resource may each be given several times (RFC 8693 §2.1).
	Audience []string
	Resource []string
	// Scope is the space-separated scope parameter, split.
	Scope []string
	// ClientID and ClientSecret are client_secret_post credentials (or a
	// public client_id beside HTTP Basic, which must then match).
	ClientID     string
	ClientSecret string
	// ClientAssertion and ClientAssertionType are private_key_jwt.
	ClientAssertion     string
	ClientAssertionType string
}

// single are the parameters that may appear at most once (RFC 6749 §3.1).
var single = []string{"grant_type", "subject_token", "subject_token_type", "actor_token", "actor_token_type",
	"requested_token_type", "scope", "client_id", "client_secret", "client_assertion", "client_assertion_type"}

// ParseForm decodes an application/x-www-form-urlencoded token request.
// Every failure is an *Error with code invalid_request; unknown parameters
// are ignored (RFC 6749 §3.1).
func ParseForm(contentType string, body []byte) (Request, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return Request{}, refuse(CodeInvalidRequest, "Content-Type %q, want application/x-www-form-urlencoded", contentType)
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return Request{}, &Error{Code: CodeInvalidRequest, Description: "form body does not decode", Err: err}
	}
	for _, name := range single {
		if n := len(vals[name]); n > 1 {
			return Request{}, refuse(CodeInvalidRequest, "parameter %s is given %d times", name, n)
		}
	}
	r := Request{
		GrantType:           vals.Get("grant_type"),
		SubjectToken:        vals.Get("subject_token"),
		SubjectTokenType:    vals.Get("subject_token_type"),
		ActorToken:          vals.Get("actor_token"),
		ActorTokenType:      vals.Get("actor_token_type"),
		RequestedTokenType:  vals.Get("requested_token_type"),
		Audience:            nonEmpty(vals["audience"]),
		Resource:            nonEmpty(vals["resource"]),
		ClientID:            vals.Get("client_id"),
		ClientSecret:        vals.Get("client_secret"),
		ClientAssertion:     vals.Get("client_assertion"),
		ClientAssertionType: vals.Get("client_assertion_type"),
	}
	if r.GrantType == "" {
		return Request{}, refuse(CodeInvalidRequest, "parameter grant_type is required")
	}
	for _, s := range strings.Split(vals.Get("scope"), " ") {
		if s == "" {
			continue
		}
		if !runtime.ValidScope(s) {
			return Request{}, refuse(CodeInvalidScope, "scope %q is not a valid scope token (RFC 6749 §3.3)", s)
		}
		if !contains(r.Scope, s) {
			r.Scope = append(r.Scope, s)
		}
	}
	for _, res := range r.Resource {
		// RFC 8707 §2: an absolute URI without a fragment.
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			return Request{}, refuse(CodeInvalidTarget, "resource %q is not an absolute URI without a fragment", res)
		}
	}
	return r, nil
}

func nonEmpty(v []string) []string {
	var out []string
	for _, s := range v {
		if s != "" && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
