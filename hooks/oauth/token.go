package oauth

// POST /oauth2/token: RFC 8693 token exchange and client_credentials for
// claimsmith's own clients. The grants' logic lives in runtime/exchange;
// this handler authenticates the client (client_secret_basic before the
// body is read, or client_secret_post), decodes the form and answers per
// RFC 6749 §5.1/§5.2.

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	rtexchange "github.com/claimsmith/claimsmith/runtime/exchange"
)

// PatternToken is the token endpoint's route.
const PatternToken = "POST /oauth2/token"

// TokenHandler serves PatternToken for one pipeline generation: Exchanger lives as
// long as the server, Enricher is the generation's pipeline.
type TokenHandler struct {
	Exchanger *rtexchange.Exchanger
	Enricher  runtime.Enricher
	Log       *slog.Logger
	// Budget bounds the bodies read before the client is authenticated
	// (client_secret_post, private_key_jwt); nil charges nothing.
	Budget *hooks.BodyBudget
}

func (h *TokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cred, hasBasic, err := tokenBasic(r)
	if err != nil {
		writeTokenError(w, err)
		return
	}
	var body []byte
	if hasBasic {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, rtexchange.MaxBody))
	} else {
		// Credentials in the body: nobody is authenticated yet.
		var done func()
		body, done, err = hooks.ReadBodyBudget(w, r, rtexchange.MaxBody, h.Budget)
		if err == nil {
			defer done()
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, runtime.ErrTooLarge) || errors.Is(err, hooks.ErrBodyBudget) {
			hooks.WriteError(w, err)
			return
		}
		writeTokenError(w, &rtexchange.Error{Code: rtexchange.CodeInvalidRequest, Description: "reading the body", Err: err})
		return
	}
	req, err := rtexchange.ParseForm(r.Header.Get("Content-Type"), body)
	if err != nil {
		writeTokenError(w, err)
		return
	}
	switch {
	case hasBasic && (req.ClientSecret != "" || req.ClientAssertion != ""):
		// RFC 6749 §2.3: one authentication method per request.
		writeTokenError(w, &rtexchange.Error{Code: rtexchange.CodeInvalidRequest, Description: "client credentials both in the Authorization header and in the body"})
		return
	case hasBasic && req.ClientID != "" && req.ClientID != cred.ClientID:
		writeTokenError(w, &rtexchange.Error{Code: rtexchange.CodeInvalidRequest, Description: "client_id differs from the authenticated client"})
		return
	case !hasBasic:
		cred = rtexchange.Credentials{ClientID: req.ClientID, Secret: req.ClientSecret,
			Assertion: req.ClientAssertion, AssertionType: req.ClientAssertionType}
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	res, err := h.Exchanger.Token(r.Context(), h.Enricher, cred, req, rtexchange.Meta{IP: ip, UserAgent: r.UserAgent(), Hostname: r.Host})
	if err != nil {
		if _, refused := rtexchange.AsError(err); refused {
			log.DebugContext(r.Context(), "token request refused", "client", cred.ClientID, "grant_type", req.GrantType, "err", err)
		} else {
			log.ErrorContext(r.Context(), "token request failed", "client", cred.ClientID, "grant_type", req.GrantType, "err", err)
		}
		writeTokenError(w, err)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	hooks.WriteJSON(w, http.StatusOK, res)
}

// tokenBasic returns client_secret_basic credentials, form-decoded per RFC 6749
// §2.3.1; ok is false without an Authorization header.
func tokenBasic(r *http.Request) (rtexchange.Credentials, bool, error) {
	if r.Header.Get("Authorization") == "" {
		return rtexchange.Credentials{}, false, nil
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		return rtexchange.Credentials{}, true, &rtexchange.Error{Code: rtexchange.CodeInvalidClient, Description: "Authorization is not HTTP Basic"}
	}
	var err error
	if id, err = url.QueryUnescape(id); err == nil {
		secret, err = url.QueryUnescape(secret)
	}
	if err != nil {
		return rtexchange.Credentials{}, true, &rtexchange.Error{Code: rtexchange.CodeInvalidClient, Description: "credentials are not form-encoded"}
	}
	return rtexchange.Credentials{ClientID: id, Secret: secret, Basic: true}, true, nil
}

// tokenError is a token endpoint refusal in RFC 6749 §5.2 form, which
// hooks.WriteError answers as it says (hooks.ProtocolError): the code's
// status, invalid_client with a Basic challenge (the scheme the client
// used, and the one to offer a client that sent none), never cached.
type tokenError struct{ e *rtexchange.Error }

func (t tokenError) Error() string { return t.e.Error() }
func (t tokenError) Unwrap() error { return t.e }

// HTTPAnswer implements hooks.ProtocolError.
func (t tokenError) HTTPAnswer() (int, hooks.ErrorBody, http.Header) {
	h := http.Header{"Pragma": {"no-cache"}}
	if t.e.Code == rtexchange.CodeInvalidClient {
		h.Set("WWW-Authenticate", `Basic realm="claimsmith", error="invalid_client"`)
	}
	return t.e.Status(), hooks.ErrorBody{Error: t.e.Code, Description: t.e.Description}, h
}

// writeTokenError answers err through hooks.WriteError: refusals
// (*rtexchange.Error) in RFC 6749 §5.2 form, anything else as every
// server failure (500/503 without detail).
func writeTokenError(w http.ResponseWriter, err error) {
	if e, ok := rtexchange.AsError(err); ok {
		err = tokenError{e: e}
	}
	hooks.WriteError(w, err)
}
