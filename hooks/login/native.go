package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// Route patterns of the native triggers.
const (
	PatternPostLogin           = "POST /hooks/v1/post-login"
	PatternCredentialsExchange = "POST /hooks/v1/credentials-exchange"
)

// NativeConfig lists the callers of the native triggers.
type NativeConfig struct {
	Callers []CallerConfig `yaml:"callers"`
}

// CallerConfig is one caller of the native triggers.
type CallerConfig struct {
	Name             string `yaml:"name"`
	WebhookSecret    string `yaml:"webhook_secret"`
	WebhookSecretEnv string `yaml:"webhook_secret_env"`
	BearerKey        string `yaml:"bearer_key"`
	BearerKeyEnv     string `yaml:"bearer_key_env"`
	Mint             bool   `yaml:"mint"`
}

// Minter mints the tokens of an allowed login when the caller asks for them
// (standalone mode). runtime/token implements it through TokenMinter.
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
	if exp := t.AccessToken.ExpiresAt.Sub(hooks.NowFunc(m.Now)()); exp > 0 {
		out.ExpiresIn = int64(exp.Round(time.Second) / time.Second)
	}
	return out, nil
}

// Caller is one configured system allowed to call the native triggers,
// authenticated by a Standard Webhooks signature, a bearer key, or either.
type Caller struct {
	Name    string
	Webhook *WebhookVerifier // nil: this caller does not sign
	Bearer  *hooks.KeySet    // nil or empty: this caller has no bearer key
	// Mint makes every allowed login of this caller carry minted tokens,
	// as if the request had "mint": true.
	Mint bool
}

// Native is the dialect of POST /hooks/v1/post-login and
// /hooks/v1/credentials-exchange: the request is the native event (Auth0
// Actions' event in snake_case, runtime.DecodeEventRequest), the answer the
// pipeline's decision, claims per token, scope changes, metadata patches, a
// trace id and, when asked, minted tokens. A deny is a 200 answer with
// decision.allowed false, so the caller (an Auth0 Action, a custom IdP) can
// apply metadata patches that stay valid after a deny, as Auth0 does.
type Native struct {
	Trigger runtime.Trigger
	Callers []Caller
	Minter  Minter // nil: minting unavailable; "mint": true is then a 400
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
	// Degraded names what the answer went without (runtime.Result.Degraded).
	Degraded []string `json:"degraded,omitempty"`
}

func nativeKind() Kind {
	return Kind{Name: "native", Example: nativeExample, Build: fromSection(func(c *Config) *NativeConfig { return c.Native }),
		Routes: []Route{
			{PatternPostLogin, "native trigger (Standard Webhooks or bearer key)"},
			{PatternCredentialsExchange, "native machine-to-machine trigger"},
		}}
}

const nativeExample = `native:
  callers:
    - name: auth0
      webhook_secret_env: CLAIMSMITH_AUTH0_WEBHOOK_SECRET   # whsec_… (several joined by |)
      bearer_key_env: CLAIMSMITH_AUTH0_BEARER_KEY
      mint: false                  # true: also mint tokens
`

// secret: every caller has its own.
func (n *NativeConfig) secret() (string, string, string) { return "", "", "" }

func (n *NativeConfig) build(deps Deps, _ string) ([]*Handler, error) {
	callers := make([]Caller, 0, len(n.Callers))
	for i, cc := range n.Callers {
		key := fmt.Sprintf("native.callers[%d]", i)
		if cc.Name == "" {
			return nil, fmt.Errorf("%w: hooks.%s.name: required", runtime.ErrInvalid, key)
		}
		caller := Caller{Name: cc.Name, Mint: cc.Mint}
		ws, err := secret(deps, key+".webhook_secret", cc.WebhookSecret, cc.WebhookSecretEnv)
		if err != nil {
			return nil, err
		}
		if ws != "" {
			if caller.Webhook, err = NewWebhookVerifier(ws, WebhookOptions{Now: deps.Now, replay: deps.Replays.guard("native/"+cc.Name, deps.replayCapacity)}); err != nil {
				return nil, fmt.Errorf("hooks.%s.webhook_secret: %w", key, err)
			}
		}
		bk, err := secret(deps, key+".bearer_key", cc.BearerKey, cc.BearerKeyEnv)
		if err != nil {
			return nil, err
		}
		if bk != "" {
			caller.Bearer = hooks.NewKeySet(bk)
		}
		if caller.Webhook == nil && caller.Bearer == nil {
			return nil, fmt.Errorf("%w: hooks.%s (%s): needs a webhook secret or a bearer key", runtime.ErrInvalid, key, cc.Name)
		}
		callers = append(callers, caller)
	}
	if len(callers) == 0 {
		return nil, fmt.Errorf("%w: hooks.native.callers: at least one caller is required", runtime.ErrInvalid)
	}
	return []*Handler{
		{Dialect: &Native{Trigger: runtime.TriggerPostLogin, Callers: callers, Minter: deps.Minter}},
		{Dialect: &Native{Trigger: runtime.TriggerCredentialsExchange, Callers: callers, Minter: deps.Minter}},
	}, nil
}

type nativeExchange struct {
	d      *Native
	h      http.Header
	caller Caller
	signed bool // the caller is known only once the signature is checked
	mint   bool
}

// headerAuthenticated: a bearer key was checked by Accept; a signature is
// checked only against the body.
func (x *nativeExchange) headerAuthenticated() bool { return !x.signed }

// Accept authenticates a bearer key without reading the body; a Standard
// Webhooks signature can only be checked against the body (Verify).
func (d *Native) Accept(r *http.Request) (Exchange, error) {
	x := &nativeExchange{d: d, h: r.Header}
	if tok, ok := hooks.BearerToken(r); ok {
		for _, c := range d.Callers {
			if c.Bearer.Match(tok) {
				x.caller = c
				return x, nil
			}
		}
		return nil, hooks.AuthFailure("bearer", "the bearer key matches no configured caller")
	}
	if r.Header.Get(HeaderWebhookSignature) != "" {
		for _, c := range d.Callers {
			if c.Webhook != nil {
				x.signed = true
				return x, nil
			}
		}
		return nil, hooks.AuthFailure(schemeWebhooks, "no caller is configured with a webhook secret")
	}
	return nil, hooks.AuthFailure("native", "no credentials: send a Standard Webhooks signature or Authorization: Bearer <key>")
}

func (x *nativeExchange) Verify(ctx context.Context, body []byte) (func(context.Context), error) {
	if !x.signed {
		return nil, nil
	}
	var last error
	for _, c := range x.d.Callers {
		if c.Webhook == nil {
			continue
		}
		id, err := c.Webhook.Verify(ctx, x.h, body)
		if err == nil {
			x.caller = c
			return func(ctx context.Context) { c.Webhook.Release(ctx, id) }, nil
		}
		if _, signed := errors.AsType[*signedRefusal](err); signed {
			return nil, err
		}
		last = err
	}
	return nil, last
}

func (x *nativeExchange) Decode(body []byte) (Login, error) {
	req, err := runtime.DecodeEventRequest(body, x.d.Trigger)
	if err != nil {
		return Login{}, err
	}
	x.mint = req.Mint || x.caller.Mint
	if x.mint && x.d.Minter == nil {
		return Login{}, fmt.Errorf("%w: mint: token minting is not configured on this server", runtime.ErrInvalid)
	}
	l := Login{Event: &req.Event, Attrs: []slog.Attr{slog.String("caller", x.caller.Name)}}
	if x.signed {
		// The message id names the login; the caller's transaction id, if
		// any, stays in the event.
		l.TraceID = x.h.Get(HeaderWebhookID)
	}
	return l, nil
}

func (x *nativeExchange) Answer(ctx context.Context, l Login, res *runtime.Result) (int, any, error) {
	out := &NativeResponse{
		TraceID:           l.TraceID,
		Decision:          res.Decision,
		IDTokenClaims:     res.IDTokenClaims,
		AccessTokenClaims: res.AccessTokenClaims,
		ScopesAdded:       res.ScopesAdded,
		ScopesRemoved:     res.ScopesRemoved,
		AppMetadata:       res.AppMetadata,
		UserMetadata:      res.UserMetadata,
		Authorization:     res.Authorization,
		Degraded:          res.Degraded,
	}
	if x.mint && res.Decision.Allowed {
		tok, err := x.d.Minter.MintTokens(ctx, l.Event, res)
		if err != nil {
			return 0, nil, fmt.Errorf("minting tokens: %w", err)
		}
		out.Tokens = &tok
	}
	return http.StatusOK, out, nil
}
