package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// Minter mints the tokens of an allowed login when the caller asks for them
// (standalone mode). runtime/token implements it; cmd wires it.
type Minter interface {
	MintTokens(ctx context.Context, ev *runtime.Event, res *runtime.Result) (MintedTokens, error)
}

// MintedTokens are the compact JWS strings of one login, shaped like an
// OAuth token response.
type MintedTokens struct {
	IDToken     string `json:"id_token,omitempty"`
	AccessToken string `json:"access_token,omitempty"`
	TokenType   string `json:"token_type,omitempty"`
	ExpiresIn   int64  `json:"expires_in,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

// LoginMinter is runtime/token's minter as the native triggers use it.
type LoginMinter interface {
	MintLogin(ctx context.Context, ev *runtime.Event, res *runtime.Result) (token.Tokens, error)
}

// TokenMinter adapts a *token.Minter (or anything with MintLogin) to Minter.
type TokenMinter struct {
	Minter LoginMinter
	Now    func() time.Time
}

// MintTokens implements Minter.
func (m TokenMinter) MintTokens(ctx context.Context, ev *runtime.Event, res *runtime.Result) (MintedTokens, error) {
	t, err := m.Minter.MintLogin(ctx, ev, res)
	if err != nil {
		return MintedTokens{}, err
	}
	out := MintedTokens{AccessToken: t.AccessToken.Token, TokenType: "Bearer", Scope: t.Scope}
	if t.IDToken != nil {
		out.IDToken = t.IDToken.Token
	}
	if exp := t.AccessToken.ExpiresAt.Sub(nowFunc(m.Now)()); exp > 0 {
		out.ExpiresIn = int64(exp.Round(time.Second) / time.Second)
	}
	return out, nil
}

// Caller is one configured system allowed to call the native triggers,
// authenticated by a Standard Webhooks signature, a bearer key, or either.
type Caller struct {
	Name    string
	Webhook *WebhookVerifier // nil: this caller does not sign
	Bearer  *KeySet          // nil or empty: this caller has no bearer key
	// Mint makes every allowed login of this caller carry minted tokens,
	// as if the request had "mint": true.
	Mint bool
}

// NativeHandler serves POST /hooks/v1/post-login and
// /hooks/v1/credentials-exchange: the request is the native event (Auth0
// Actions' event in snake_case), the answer the pipeline's decision, claims
// per token, scope changes, metadata patches, a trace id and, when asked,
// minted tokens. A deny is a 200 answer with decision.allowed false, so the
// caller (an Auth0 Action, a custom IdP) can apply metadata patches that
// stay valid after a deny, as Auth0 does.
type NativeHandler struct {
	Trigger  runtime.Trigger
	Enricher runtime.Enricher
	Callers  []Caller
	Minter   Minter // nil: minting unavailable; "mint": true is then a 400
	MaxBody  int64  // default DefaultMaxBody
	Log      *slog.Logger
}

// NativeRequest is the body of a native trigger: the event, plus "mint" to
// ask for minted tokens.
type NativeRequest struct {
	runtime.Event
	Mint bool `json:"mint,omitempty"`
}

// NativeResponse is the answer of a native trigger.
type NativeResponse struct {
	TraceID           string                 `json:"trace_id"`
	Decision          runtime.Decision       `json:"decision"`
	IDTokenClaims     runtime.Claims         `json:"id_token_claims"`
	AccessTokenClaims runtime.Claims         `json:"access_token_claims"`
	ScopesAdded       []string               `json:"scopes_added,omitempty"`
	ScopesRemoved     []string               `json:"scopes_removed,omitempty"`
	AppMetadata       map[string]any         `json:"app_metadata,omitempty"`
	UserMetadata      map[string]any         `json:"user_metadata,omitempty"`
	Authorization     *runtime.Authorization `json:"authorization,omitempty"`
	Tokens            *MintedTokens          `json:"tokens,omitempty"`
}

func (h *NativeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := h.serve(w, r)
	if err != nil {
		logf(h.Log).LogAttrs(r.Context(), levelOf(err), "native trigger refused", slog.String("trigger", string(h.Trigger)), slog.String("error", err.Error()))
		WriteError(w, err)
		return
	}
	w.Header().Set("X-Claimsmith-Trace-Id", resp.TraceID)
	WriteJSON(w, http.StatusOK, resp)
}

func (h *NativeHandler) serve(w http.ResponseWriter, r *http.Request) (_ *NativeResponse, err error) {
	// Authentication comes first; a bearer key needs no body, a signature does.
	caller, needSig, err := h.callerByHeader(r)
	if err != nil {
		return nil, err
	}
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	body, err := readBody(w, r, h.MaxBody)
	if err != nil {
		return nil, err
	}
	traceID := ""
	if needSig {
		if caller, traceID, err = h.callerBySignature(r, body); err != nil {
			return nil, err
		}
		defer func() {
			if st, _ := StatusOf(err); err != nil && st >= 500 {
				caller.Webhook.Release(traceID)
			}
		}()
	}
	req, err := DecodeNativeRequest(body, h.Trigger)
	if err != nil {
		return nil, err
	}
	mint := req.Mint || caller.Mint
	if mint && h.Minter == nil {
		return nil, fmt.Errorf("%w: mint: token minting is not configured on this server", runtime.ErrInvalid)
	}
	if traceID == "" {
		traceID = req.Transaction.ID
	}
	if traceID == "" {
		traceID = newTraceID()
	}
	if req.Transaction.ID == "" {
		req.Transaction.ID = traceID
	}
	ev := &req.Event
	res, err := h.Enricher.Run(r.Context(), ev)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	out := &NativeResponse{
		TraceID:           traceID,
		Decision:          res.Decision,
		IDTokenClaims:     res.IDTokenClaims,
		AccessTokenClaims: res.AccessTokenClaims,
		ScopesAdded:       res.ScopesAdded,
		ScopesRemoved:     res.ScopesRemoved,
		AppMetadata:       res.AppMetadata,
		UserMetadata:      res.UserMetadata,
		Authorization:     res.Authorization,
	}
	if mint && res.Decision.Allowed {
		tok, err := h.Minter.MintTokens(r.Context(), ev, res)
		if err != nil {
			return nil, fmt.Errorf("minting tokens: %w", err)
		}
		out.Tokens = &tok
	}
	if l := logf(h.Log); l.Enabled(r.Context(), slog.LevelInfo) {
		l.LogAttrs(r.Context(), slog.LevelInfo, "login",
			slog.String("trace_id", traceID), slog.String("trigger", string(ev.Trigger)), slog.String("caller", caller.Name),
			slog.String("user", ev.User.UserID), slog.String("client", ev.Client.ClientID),
			slog.Bool("allowed", res.Decision.Allowed), slog.String("rule", res.Decision.Rule))
	}
	return out, nil
}

// callerByHeader authenticates a bearer key without reading the body. It
// reports needSig when the request carries a Standard Webhooks signature
// instead, which can only be checked once the body is read.
func (h *NativeHandler) callerByHeader(r *http.Request) (Caller, bool, error) {
	if tok, ok := bearerToken(r); ok {
		for _, c := range h.Callers {
			if c.Bearer.Match(tok) {
				return c, false, nil
			}
		}
		return Caller{}, false, authErr("bearer", "the bearer key matches no configured caller")
	}
	if r.Header.Get(HeaderWebhookSignature) != "" {
		for _, c := range h.Callers {
			if c.Webhook != nil {
				return Caller{}, true, nil
			}
		}
		return Caller{}, false, authErr(schemeWebhooks, "no caller is configured with a webhook secret")
	}
	return Caller{}, false, authErr("native", "no credentials: send a Standard Webhooks signature or Authorization: Bearer <key>")
}

func (h *NativeHandler) callerBySignature(r *http.Request, body []byte) (Caller, string, error) {
	var last error
	for _, c := range h.Callers {
		if c.Webhook == nil {
			continue
		}
		id, err := c.Webhook.Verify(r.Header, body)
		if err == nil {
			return c, id, nil
		}
		last = err
	}
	return Caller{}, "", last
}

// DecodeNativeRequest decodes a native trigger body. Unknown fields are
// ignored (an Auth0 Action forwards its whole event); the trigger comes from
// the endpoint, not the body. user.user_id and client.client_id are required,
// except that a credentials-exchange's subject defaults to its client.
func DecodeNativeRequest(body []byte, trigger runtime.Trigger) (*NativeRequest, error) {
	var req NativeRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError("event", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: event: trailing data after the JSON object", runtime.ErrInvalid)
	}
	if trigger != "" {
		req.Trigger = trigger
	}
	if req.Client.ClientID == "" {
		return nil, &runtime.ValidationError{Entity: "event", Field: "client.client_id", Reason: "required"}
	}
	if req.User.UserID == "" {
		if req.Trigger != runtime.TriggerCredentialsExchange {
			return nil, &runtime.ValidationError{Entity: "event", Field: "user.user_id", Reason: "required"}
		}
		req.User.UserID = req.Client.ClientID
	}
	return &req, nil
}

// jsonError turns a decoding error into an ErrInvalid naming what was wrong.
func jsonError(what string, err error) error {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		field := e.Field
		if field == "" {
			field = "(top level)"
		}
		return &runtime.ValidationError{Entity: what, Field: field, Reason: fmt.Sprintf("want %s, got JSON %s", e.Type, e.Value)}
	case *json.SyntaxError:
		return fmt.Errorf("%w: %s: malformed JSON at byte %d: %v", runtime.ErrInvalid, what, e.Offset, e)
	}
	return fmt.Errorf("%w: %s: %v", runtime.ErrInvalid, what, err)
}

// logf returns l, or a logger that discards, so handlers built in tests
// without a logger still work.
func logf(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// levelOf logs refusals of the caller at Info and our own failures at Error.
func levelOf(err error) slog.Level {
	if st, _ := StatusOf(err); st >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
