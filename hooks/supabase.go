package hooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/claimsmith/claimsmith/runtime"
)

// SupabaseHandler serves Supabase Auth's custom access token hook at
// POST /hooks/supabase/custom-access-token (REFERENCE.md §5): Standard
// Webhooks signatures with the hook's "v1,whsec_…" secret(s). The answer
// {"claims": …} REPLACES the token's claims, so it echoes every input claim
// and adds the pipeline's access-token claims; a deny is 200 with
// {"error": {"http_code": 403, "message": …}}.
type SupabaseHandler struct {
	Enricher runtime.Enricher
	Verifier *WebhookVerifier
	// ClientID names the application rules and required_roles see: Supabase
	// has no client concept in the hook (default "supabase").
	ClientID string
	// Connection is used when app_metadata.provider is absent (default "supabase").
	Connection string
	MaxBody    int64
	Log        *slog.Logger
}

// SupabaseRequest is the hook's input.
type SupabaseRequest struct {
	UserID               string         `json:"user_id"`
	Claims               runtime.Claims `json:"claims"`
	AuthenticationMethod string         `json:"authentication_method"`
	Metadata             map[string]any `json:"metadata"`
}

// SupabaseResponse is the hook's output: claims, or an error.
type SupabaseResponse struct {
	Claims runtime.Claims `json:"claims,omitempty"`
	Error  *SupabaseError `json:"error,omitempty"`
}

// SupabaseError is how a hook refuses a token.
type SupabaseError struct {
	HTTPCode int    `json:"http_code"`
	Message  string `json:"message"`
}

// supabaseKeptClaims are the claims Supabase requires in the answer; ours
// never replace the input's values.
var supabaseKeptClaims = []string{"iss", "aud", "exp", "iat", "sub", "email", "phone", "role", "aal", "session_id", "is_anonymous", "amr", "app_metadata", "user_metadata"}

func (h *SupabaseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := h.serve(w, r)
	if err != nil {
		logf(h.Log).LogAttrs(r.Context(), levelOf(err), "supabase hook refused", slog.String("error", err.Error()))
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, resp)
}

func (h *SupabaseHandler) serve(w http.ResponseWriter, r *http.Request) (_ *SupabaseResponse, err error) {
	if r.Header.Get(HeaderWebhookSignature) == "" {
		return nil, authErr(schemeWebhooks, "missing webhook-signature header")
	}
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	body, err := readBody(w, r, h.MaxBody)
	if err != nil {
		return nil, err
	}
	id, err := h.Verifier.Verify(r.Header, body)
	if err != nil {
		return nil, err
	}
	defer func() {
		if st, _ := StatusOf(err); err != nil && st >= 500 {
			h.Verifier.Release(id)
		}
	}()
	req, err := DecodeSupabaseRequest(body)
	if err != nil {
		return nil, err
	}
	ev := req.Event(h.ClientID, h.Connection)
	ev.Transaction.ID = id
	res, err := h.Enricher.Run(r.Context(), ev)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if l := logf(h.Log); l.Enabled(r.Context(), slog.LevelInfo) {
		l.LogAttrs(r.Context(), slog.LevelInfo, "login",
			slog.String("trace_id", id), slog.String("dialect", "supabase"),
			slog.String("user", ev.User.UserID), slog.String("client", ev.Client.ClientID),
			slog.Bool("allowed", res.Decision.Allowed), slog.String("rule", res.Decision.Rule))
	}
	return SupabaseAnswer(req, res), nil
}

// DecodeSupabaseRequest decodes the hook input; user_id and claims are required.
func DecodeSupabaseRequest(body []byte) (*SupabaseRequest, error) {
	var req SupabaseRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError("supabase hook", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: supabase hook: trailing data after the JSON object", runtime.ErrInvalid)
	}
	if req.UserID == "" {
		return nil, &runtime.ValidationError{Entity: "supabase hook", Field: "user_id", Reason: "required"}
	}
	if req.Claims == nil {
		return nil, &runtime.ValidationError{Entity: "supabase hook", Field: "claims", Reason: "required"}
	}
	return &req, nil
}

// Event maps the hook input to the native event.
func (req *SupabaseRequest) Event(clientID, connection string) *runtime.Event {
	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin}
	ev.User.UserID = req.UserID
	str := func(name string) string {
		v, _ := req.Claims.Get(name)
		s, _ := v.(string)
		return s
	}
	ev.User.Email = str("email")
	ev.User.PhoneNumber = str("phone")
	if v, ok := req.Claims.Get("app_metadata"); ok {
		if m, ok := v.(map[string]any); ok {
			ev.User.AppMetadata = runtime.CloneMap(m)
		}
	}
	if v, ok := req.Claims.Get("user_metadata"); ok {
		if m, ok := v.(map[string]any); ok {
			ev.User.UserMetadata = runtime.CloneMap(m)
			if ev.User.Name == "" {
				ev.User.Name, _ = m["full_name"].(string)
			}
			if b, ok := m["email_verified"].(bool); ok {
				ev.User.EmailVerified = b
			}
		}
	}
	provider, _ := ev.User.AppMetadata["provider"].(string)
	ev.Connection.Name = firstNonEmpty(provider, connection, "supabase")
	ev.Connection.Strategy = provider
	ev.Client.ClientID = firstNonEmpty(clientID, "supabase")
	ev.Transaction.Protocol = req.AuthenticationMethod
	if aud := str("aud"); aud != "" {
		ev.Transaction.Audience = aud
	}
	return ev
}

// SupabaseAnswer echoes every input claim, in order, and adds the
// pipeline's access-token claims; claims Supabase requires keep their input
// values.
func SupabaseAnswer(req *SupabaseRequest, res *runtime.Result) *SupabaseResponse {
	if !res.Decision.Allowed {
		msg := res.Decision.Reason
		if msg == "" {
			msg = "access denied"
		}
		return &SupabaseResponse{Error: &SupabaseError{HTTPCode: http.StatusForbidden, Message: msg}}
	}
	out := make(runtime.Claims, len(req.Claims), len(req.Claims)+len(res.AccessTokenClaims))
	copy(out, req.Claims)
	for _, c := range res.AccessTokenClaims {
		if _, present := out.Get(c.Name); present && slices.Contains(supabaseKeptClaims, c.Name) {
			continue
		}
		out.Set(c.Name, c.Value)
	}
	return &SupabaseResponse{Claims: out}
}
