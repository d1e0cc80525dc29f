// Package oauth serves claimsmith's OAuth/OIDC endpoints: RFC 7662
// introspection, RFC 7009 revocation, the JWKS and OpenID Provider
// metadata. The logic lives in runtime/token; these handlers authenticate,
// decode and answer in the shapes the RFCs require, on the platform of
// package hooks.
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// ClientAuthenticator checks an introspection/revocation caller's credentials.
type ClientAuthenticator interface {
	Authenticate(ctx context.Context, clientID, secret string) (token.Caller, error)
}

// TokenIntrospector answers introspection questions.
type TokenIntrospector interface {
	Introspect(ctx context.Context, caller token.Caller, r token.IntrospectRequest) (token.Introspection, error)
	Signed(ctx context.Context, caller token.Caller, ans token.Introspection) (string, error)
}

// TokenRevoker revokes tokens.
type TokenRevoker interface {
	Revoke(ctx context.Context, caller token.Caller, tok string) error
}

// MaxOAuthBody bounds introspection and revocation requests: a form with one
// token (an 8 KiB claim set signs to about 12 KB) and client credentials.
const MaxOAuthBody = 64 << 10

// OAuthForm is a decoded introspection or revocation request body.
type OAuthForm struct {
	Token         string
	TokenTypeHint string
	ClientID      string
	ClientSecret  string
	// Live is the claimsmith extension live=true (introspection only).
	Live bool
}

// ParseOAuthForm decodes an application/x-www-form-urlencoded body. Each
// parameter may appear at most once (RFC 6749 §3.1); token is required;
// unknown parameters are ignored (RFC 6749 §3.1).
func ParseOAuthForm(contentType string, body []byte) (OAuthForm, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return OAuthForm{}, fmt.Errorf("%w: Content-Type %q, want application/x-www-form-urlencoded", hooks.ErrUnsupportedMediaType, contentType)
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return OAuthForm{}, fmt.Errorf("%w: form body: %v", runtime.ErrInvalid, err)
	}
	var f OAuthForm
	for name, dst := range map[string]*string{"token": &f.Token, "token_type_hint": &f.TokenTypeHint,
		"client_id": &f.ClientID, "client_secret": &f.ClientSecret} {
		switch v := vals[name]; len(v) {
		case 0:
		case 1:
			*dst = v[0]
		default:
			return OAuthForm{}, fmt.Errorf("%w: parameter %s is given %d times", runtime.ErrInvalid, name, len(v))
		}
	}
	switch v := vals["live"]; {
	case len(v) > 1:
		return OAuthForm{}, fmt.Errorf("%w: parameter live is given %d times", runtime.ErrInvalid, len(v))
	case len(v) == 1:
		if f.Live, err = strconv.ParseBool(v[0]); err != nil {
			return OAuthForm{}, fmt.Errorf("%w: parameter live=%q is not true or false", runtime.ErrInvalid, v[0])
		}
	}
	if f.Token == "" {
		return OAuthForm{}, fmt.Errorf("%w: parameter token is required", runtime.ErrInvalid)
	}
	return f, nil
}

// basicCredentials returns HTTP Basic credentials, which RFC 6749 §2.3.1
// form-encodes before base64; ok is false when there is no Authorization header.
func basicCredentials(r *http.Request) (id, secret string, ok bool, err error) {
	if r.Header.Get("Authorization") == "" {
		return "", "", false, nil
	}
	rawID, rawSecret, isBasic := r.BasicAuth()
	if !isBasic {
		return "", "", true, &hooks.AuthError{Scheme: "basic", Reason: "Authorization is not HTTP Basic"}
	}
	if id, err = url.QueryUnescape(rawID); err == nil {
		secret, err = url.QueryUnescape(rawSecret)
	}
	if err != nil {
		return "", "", true, &hooks.AuthError{Scheme: "basic", Reason: "credentials are not form-encoded"}
	}
	return id, secret, true, nil
}

// oauthRequest authenticates the caller and decodes the form. With HTTP
// Basic the caller is authenticated before the body is decoded; with
// client_secret_post the credentials are in the body, read under the limit.
func oauthRequest(w http.ResponseWriter, r *http.Request, clients ClientAuthenticator, limit int64, budget *hooks.BodyBudget) (token.Caller, OAuthForm, error) {
	ctx := r.Context()
	id, secret, hasBasic, err := basicCredentials(r)
	if err != nil {
		return token.Caller{}, OAuthForm{}, err
	}
	var caller token.Caller
	if hasBasic {
		if caller, err = clients.Authenticate(ctx, id, secret); err != nil {
			return token.Caller{}, OAuthForm{}, err
		}
	}
	// A caller without Basic credentials is not authenticated before its
	// body is read: the body counts against the unauthenticated budget.
	var body []byte
	if hasBasic {
		body, err = hooks.ReadBody(w, r, limit)
	} else {
		var done func()
		body, done, err = hooks.ReadBodyBudget(w, r, limit, budget)
		if err == nil {
			defer done()
		}
	}
	if err != nil {
		return token.Caller{}, OAuthForm{}, err
	}
	f, err := ParseOAuthForm(r.Header.Get("Content-Type"), body)
	if err != nil {
		return token.Caller{}, OAuthForm{}, err
	}
	switch {
	case hasBasic && (f.ClientID != "" || f.ClientSecret != ""):
		// RFC 6749 §2.3: one authentication method per request.
		return token.Caller{}, OAuthForm{}, fmt.Errorf("%w: client credentials given both in the Authorization header and in the body", runtime.ErrInvalid)
	case !hasBasic:
		if f.ClientID == "" {
			return token.Caller{}, OAuthForm{}, &hooks.AuthError{Scheme: "basic", Reason: "client authentication is required"}
		}
		if caller, err = clients.Authenticate(ctx, f.ClientID, f.ClientSecret); err != nil {
			return token.Caller{}, OAuthForm{}, err
		}
	}
	return caller, f, nil
}

// clientAuthError is a failed client authentication of introspection or
// revocation in RFC 6749 §5.2 form: 401 invalid_client with a Basic
// challenge, whatever the cause (no client-id oracle). hooks.WriteError
// answers it as it says (hooks.ProtocolError).
type clientAuthError struct{ err error }

func (e *clientAuthError) Error() string { return e.err.Error() }
func (e *clientAuthError) Unwrap() error { return e.err }

// HTTPAnswer implements hooks.ProtocolError.
func (e *clientAuthError) HTTPAnswer() (int, hooks.ErrorBody, http.Header) {
	return http.StatusUnauthorized, hooks.ErrorBody{Error: "invalid_client", Description: "client authentication failed"},
		http.Header{"Www-Authenticate": {`Basic realm="claimsmith", error="invalid_client"`}}
}

// oauthError classifies an introspection or revocation refusal: a failed
// client authentication becomes a clientAuthError; anything else keeps
// its sentinel for hooks.WriteError.
func oauthError(err error) error {
	if errors.Is(err, runtime.ErrUnauthenticated) {
		return &clientAuthError{err: err}
	}
	return err
}

// IntrospectHandler serves POST /oauth2/introspect (RFC 7662, and RFC 9701
// when the caller accepts application/token-introspection+jwt).
type IntrospectHandler struct {
	Clients      ClientAuthenticator
	Introspector TokenIntrospector
	MaxBody      int64
	Log          *slog.Logger
	// Budget bounds the bodies read before the caller is authenticated
	// (client_secret_post); nil charges nothing.
	Budget *hooks.BodyBudget
}

const introspectionJWT = "application/token-introspection+jwt"

func (h *IntrospectHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := orDiscard(h.Log)
	caller, f, err := oauthRequest(w, r, h.Clients, h.MaxBody, h.Budget)
	if err != nil {
		log.DebugContext(r.Context(), "introspection refused", "err", err)
		hooks.WriteError(w, oauthError(err))
		return
	}
	ans, err := h.Introspector.Introspect(r.Context(), caller, token.IntrospectRequest{Token: f.Token, TokenTypeHint: f.TokenTypeHint, Live: f.Live})
	if err != nil {
		log.ErrorContext(r.Context(), "introspection failed", "caller", caller.ClientID, "err", err)
		hooks.WriteError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if accepts(r.Header.Values("Accept"), introspectionJWT) {
		jwt, err := h.Introspector.Signed(r.Context(), caller, ans)
		if err != nil {
			log.ErrorContext(r.Context(), "signing introspection response", "err", err)
			hooks.WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", introspectionJWT)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(jwt))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ans.JSON)
}

// accepts reports whether an Accept header lists mediaType with q > 0.
func accepts(headers []string, mediaType string) bool {
	for _, h := range headers {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != mediaType {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// RevokeHandler serves POST /oauth2/revoke (RFC 7009): 200 whether or not the
// token was known, once the caller is authenticated.
type RevokeHandler struct {
	Clients ClientAuthenticator
	Revoker TokenRevoker
	MaxBody int64
	Log     *slog.Logger
	// Budget: as IntrospectHandler's.
	Budget *hooks.BodyBudget
}

func (h *RevokeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := orDiscard(h.Log)
	caller, f, err := oauthRequest(w, r, h.Clients, h.MaxBody, h.Budget)
	if err != nil {
		log.DebugContext(r.Context(), "revocation refused", "err", err)
		hooks.WriteError(w, oauthError(err))
		return
	}
	if err := h.Revoker.Revoke(r.Context(), caller, f.Token); err != nil {
		log.ErrorContext(r.Context(), "revocation failed", "caller", caller.ClientID, "err", err)
		// RFC 7009 §2.2.1: a server that cannot revoke now says so with 503.
		hooks.WriteError(w, fmt.Errorf("%w: %v", runtime.ErrUnavailable, err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// JWKSource is the published key set.
type JWKSource interface {
	JWKS() jose.JSONWebKeySet
	CacheMaxAge() time.Duration
	PublishedAlgorithms() []token.Algorithm
}

// JWKSHandler serves GET /.well-known/jwks.json: public keys only, cacheable
// for as long as the rotation schedule allows (see KeySet.CacheMaxAge).
type JWKSHandler struct {
	Keys JWKSource
}

func (h *JWKSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	set := h.Keys.JWKS()
	for _, k := range set.Keys {
		if !k.IsPublic() {
			// Never reached with KeySet; refuse rather than leak a private key.
			hooks.WriteError(w, errors.New("jwks: a private key was about to be published"))
			return
		}
	}
	if age := int(h.Keys.CacheMaxAge() / time.Second); age > 0 {
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(age))
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("Content-Type", "application/json")
	writeJSONBody(w, set)
}

// DiscoveryHandler serves GET /.well-known/openid-configuration.
type DiscoveryHandler struct {
	Issuer string
	Keys   JWKSource
	// GrantTypes, when any, advertise POST /oauth2/token as token_endpoint.
	GrantTypes []string
}

// ProviderMetadata is the OpenID Provider / OAuth 2.0 Authorization Server
// metadata claimsmith publishes (OIDC Discovery §3, RFC 8414, RFC 9701 §7).
type ProviderMetadata struct {
	Issuer                                 string   `json:"issuer"`
	JWKSURI                                string   `json:"jwks_uri"`
	TokenEndpoint                          string   `json:"token_endpoint,omitempty"`
	TokenEndpointAuthMethods               []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	SubjectTypesSupported                  []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported       []string `json:"id_token_signing_alg_values_supported"`
	IntrospectionSigningAlgValuesSupported []string `json:"introspection_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethods       []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods          []string `json:"revocation_endpoint_auth_methods_supported"`
	ClaimsSupported                        []string `json:"claims_supported"`
	AccessTokenSigningAlgValuesSupported   []string `json:"access_token_signing_alg_values_supported"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported,omitempty"`
	ServiceDocumentation                   string   `json:"service_documentation,omitempty"`
}

// Metadata builds the document for the current key set.
func (h *DiscoveryHandler) Metadata() ProviderMetadata {
	base := strings.TrimSuffix(h.Issuer, "/")
	var algs []string
	for _, a := range h.Keys.PublishedAlgorithms() {
		algs = append(algs, string(a))
	}
	auth := []string{"client_secret_basic", "client_secret_post"}
	md := ProviderMetadata{
		Issuer:                                 h.Issuer,
		JWKSURI:                                base + "/.well-known/jwks.json",
		IntrospectionEndpoint:                  base + "/oauth2/introspect",
		RevocationEndpoint:                     base + "/oauth2/revoke",
		SubjectTypesSupported:                  []string{"public"},
		IDTokenSigningAlgValuesSupported:       algs,
		IntrospectionSigningAlgValuesSupported: algs,
		AccessTokenSigningAlgValuesSupported:   algs,
		IntrospectionEndpointAuthMethods:       auth,
		RevocationEndpointAuthMethods:          auth,
		// claimsmith mints tokens for the IdP that runs the authorization
		// flow; it hosts no authorization endpoint of its own.
		ResponseTypesSupported: []string{"id_token"},
		ClaimsSupported:        []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "client_id", "scope", "jti"},
	}
	if len(h.GrantTypes) > 0 {
		md.TokenEndpoint = base + "/oauth2/token"
		md.TokenEndpointAuthMethods = append(slices.Clone(auth), "private_key_jwt")
		md.GrantTypesSupported = h.GrantTypes
	}
	return md
}

func (h *DiscoveryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	writeJSONBody(w, h.Metadata())
}

// Route patterns and metrics labels of the endpoints.
const (
	PatternIntrospect = "POST /oauth2/introspect"
	PatternRevoke     = "POST /oauth2/revoke"
	PatternJWKS       = "GET /.well-known/jwks.json"
	PatternDiscovery  = "GET /.well-known/openid-configuration"

	LabelOAuth     = "oauth"
	LabelDiscovery = "discovery"
)

// Endpoints are the OAuth/OIDC handlers `claimsmith serve` hosts; a nil
// one is not mounted.
type Endpoints struct {
	Introspect http.Handler
	Revoke     http.Handler
	JWKS       http.Handler
	Discovery  http.Handler
}

// Routes is the endpoints' part of the server's route table.
func (e Endpoints) Routes() []hooks.Route {
	return []hooks.Route{
		{Pattern: PatternIntrospect, Handler: e.Introspect, MaxBody: MaxOAuthBody, Label: LabelOAuth},
		{Pattern: PatternRevoke, Handler: e.Revoke, MaxBody: MaxOAuthBody, Label: LabelOAuth},
		{Pattern: PatternJWKS, Handler: e.JWKS, Label: LabelDiscovery},
		{Pattern: PatternDiscovery, Handler: e.Discovery, Label: LabelDiscovery},
	}
}

// writeJSONBody writes v as a 200 JSON body; headers are already set.
func writeJSONBody(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		hooks.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
