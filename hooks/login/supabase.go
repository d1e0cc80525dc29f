package login

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

// PatternSupabase is the Supabase dialect's route.
const PatternSupabase = "POST /hooks/supabase/custom-access-token"

// SupabaseConfig configures the Supabase custom access token hook.
type SupabaseConfig struct {
	Secret     string `yaml:"secret"`
	SecretEnv  string `yaml:"secret_env"`
	ClientID   string `yaml:"client_id"`
	Connection string `yaml:"connection"`
}

// Supabase is the dialect of Supabase Auth's custom access token hook at
// POST /hooks/supabase/custom-access-token (REFERENCE.md §5): Standard
// Webhooks signatures with the hook's "v1,whsec_…" secret(s). The answer
// {"claims": …} REPLACES the token's claims, so it echoes every input claim
// and adds the pipeline's access-token claims; a deny is 200 with
// {"error": {"http_code": 403, "message": …}}.
type Supabase struct {
	Verifier *WebhookVerifier
	// ClientID names the application rules and required_roles see: Supabase
	// has no client concept in the hook (default "supabase").
	ClientID string
	// Connection is used when app_metadata.provider is absent (default "supabase").
	Connection string
}

func supabaseKind() Kind {
	return Kind{Name: "supabase", Example: supabaseExample, Build: fromSection(func(c *Config) *SupabaseConfig { return c.Supabase }),
		Routes: []Route{{PatternSupabase, "Supabase custom access token hook (Standard Webhooks)"}}}
}

const supabaseExample = `supabase:
  secret_env: CLAIMSMITH_SUPABASE_HOOK_SECRET       # v1,whsec_… (several joined by |)
  client_id: supabase
`

func (sc *SupabaseConfig) secret() (string, string, string) {
	return "supabase.secret", sc.Secret, sc.SecretEnv
}

func (sc *SupabaseConfig) build(deps Deps, key string) ([]*Handler, error) {
	v, err := NewWebhookVerifier(key, WebhookOptions{Now: deps.Now, replay: deps.Replays.guard("supabase", deps.replayCapacity)})
	if err != nil {
		return nil, fmt.Errorf("hooks.supabase.secret_env: %w", err)
	}
	return []*Handler{{Dialect: &Supabase{Verifier: v, ClientID: sc.ClientID, Connection: sc.Connection}}}, nil
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

type supabaseExchange struct {
	d   *Supabase
	h   http.Header
	id  string
	req *SupabaseRequest
}

// Accept checks that the request is signed.
func (d *Supabase) Accept(r *http.Request) (Exchange, error) {
	if r.Header.Get(HeaderWebhookSignature) == "" {
		return nil, hooks.AuthFailure(schemeWebhooks, "missing webhook-signature header")
	}
	return &supabaseExchange{d: d, h: r.Header}, nil
}

func (x *supabaseExchange) Verify(ctx context.Context, body []byte) (func(context.Context), error) {
	id, err := x.d.Verifier.Verify(ctx, x.h, body)
	if err != nil {
		return nil, err
	}
	x.id = id
	return func(ctx context.Context) { x.d.Verifier.Release(ctx, id) }, nil
}

func (x *supabaseExchange) Decode(body []byte) (Login, error) {
	req, err := DecodeSupabaseRequest(body)
	if err != nil {
		return Login{}, err
	}
	x.req = req
	return Login{Event: req.Event(x.d.ClientID, x.d.Connection), TraceID: x.id}, nil
}

func (x *supabaseExchange) Answer(_ context.Context, _ Login, res *runtime.Result) (int, any, error) {
	return http.StatusOK, SupabaseAnswer(x.req, res), nil
}

// DecodeSupabaseRequest decodes the hook input; user_id and claims are required.
func DecodeSupabaseRequest(body []byte) (*SupabaseRequest, error) {
	var req SupabaseRequest
	if err := runtime.DecodeJSON("supabase hook", body, &req); err != nil {
		return nil, err
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
