package login

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

// Route patterns of the Hydra dialect. PatternHydraRefresh takes the
// legacy oauth2.refresh_token_hook; the token hook endpoint accepts that
// body too.
const (
	PatternHydraToken   = "POST /hooks/hydra/token"
	PatternHydraRefresh = "POST /hooks/hydra/refresh"
)

// HydraConfig configures the Ory Hydra token hook.
type HydraConfig struct {
	Header     string `yaml:"header"`
	APIKey     string `yaml:"api_key"`
	APIKeyEnv  string `yaml:"api_key_env"`
	Connection string `yaml:"connection"`
}

// Hydra is the dialect of Ory Hydra's token hook (oauth2.token_hook) and
// its legacy refresh hook (oauth2.refresh_token_hook) at POST
// /hooks/hydra/token (REFERENCE.md §3). Hydra authenticates with an API key
// in a configured header (`auth: {type: api_key, config: {in: header, name,
// value}}`).
//
// Hydra REPLACES the token's extra claims with what we answer, so the answer
// starts from the incoming session.extra (access token) and
// session.id_token.id_token_claims.ext (ID token, keeping Hydra's sid) and
// adds the pipeline's claims. Status: 403 denies (the client gets
// access_denied), 204 leaves the tokens unchanged, 200 carries the new
// session; Hydra turns any other status, and a 200 without a body, into a
// failed token request, so claimsmith being down fails closed.
type Hydra struct {
	// Header is the header Hydra puts the API key in (default "Authorization";
	// there a "Bearer " prefix is accepted too).
	Header string
	Keys   *hooks.KeySet
	// Connection is the connection name rules and mappings see (default "hydra").
	Connection string
	// Namespace is the pipeline's claim namespace. On a refresh Hydra sends
	// back the claims we added at login; keys under the namespace are
	// dropped from the incoming session first, so a role removed since then
	// does not linger in the refreshed tokens.
	Namespace string
}

func hydraKind() Kind {
	return Kind{Name: "hydra", Example: hydraExample, Build: fromSection(func(c *Config) *HydraConfig { return c.Hydra }),
		Routes: []Route{{PatternHydraToken, "Ory Hydra token hook"}, {PatternHydraRefresh, "Ory Hydra legacy refresh hook"}}}
}

const hydraExample = `hydra:
  header: Authorization            # Hydra's oauth2.token_hook.auth.config.name
  api_key_env: CLAIMSMITH_HYDRA_API_KEY
  connection: hydra
`

func (hc *HydraConfig) secret() (string, string, string) {
	return "hydra.api_key", hc.APIKey, hc.APIKeyEnv
}

func (hc *HydraConfig) build(deps Deps, key string) ([]*Handler, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: hooks.hydra.api_key_env: required", runtime.ErrInvalid)
	}
	d := &Hydra{Header: hc.Header, Keys: hooks.NewKeySet(splitSecrets(key)...), Connection: hc.Connection, Namespace: deps.Namespace}
	return []*Handler{{Dialect: d}, {Dialect: d}}, nil
}

// HydraHookRequest is Hydra's token hook body; the legacy refresh hook's
// fields (subject, requester, client_id, granted_*) are accepted too.
type HydraHookRequest struct {
	Session *HydraSession `json:"session"`
	Request *HydraRequest `json:"request"`

	Subject         string        `json:"subject"`
	Requester       *HydraRequest `json:"requester"`
	ClientID        string        `json:"client_id"`
	GrantedScopes   []string      `json:"granted_scopes"`
	GrantedAudience []string      `json:"granted_audience"`
}

// HydraSession is the part of Hydra's oauth2.Session we read. Timestamps
// (RFC 3339 strings) are not decoded: the hook never needs them.
type HydraSession struct {
	IDToken *struct {
		Claims *struct {
			Sub   string         `json:"sub"`
			Nonce string         `json:"nonce"`
			Acr   string         `json:"acr"`
			Amr   []string       `json:"amr"`
			Ext   map[string]any `json:"ext"`
		} `json:"id_token_claims"`
		Subject  string `json:"subject"`
		Username string `json:"username"`
	} `json:"id_token"`
	Extra    map[string]any `json:"extra"`
	ClientID string         `json:"client_id"`
}

// HydraRequest is the token request's context (token hook: "request";
// refresh hook: "requester", without requested_scopes and payload).
type HydraRequest struct {
	ClientID        string              `json:"client_id"`
	RequestedScopes []string            `json:"requested_scopes"`
	GrantedScopes   []string            `json:"granted_scopes"`
	GrantedAudience []string            `json:"granted_audience"`
	GrantTypes      []string            `json:"grant_types"`
	Payload         map[string][]string `json:"payload"`
}

// HydraHookResponse is what Hydra applies: both maps replace the tokens'
// extra claims.
type HydraHookResponse struct {
	Session struct {
		AccessToken map[string]any `json:"access_token"`
		IDToken     map[string]any `json:"id_token"`
	} `json:"session"`
}

// hydraKeptIDClaims are ID-token ext keys Hydra itself put there; our claims
// never replace them.
var hydraKeptIDClaims = []string{"sid"}

type hydraExchange struct {
	headerKey
	d   *Hydra
	req *HydraHookRequest
}

// Accept checks the API key header.
func (d *Hydra) Accept(r *http.Request) (Exchange, error) {
	name := d.Header
	if name == "" {
		name = "Authorization"
	}
	v := r.Header.Get(name)
	if v == "" {
		return nil, hooks.AuthFailure("hydra-api-key", "missing %s header", name)
	}
	if d.Keys.Match(v) {
		return &hydraExchange{d: d}, nil
	}
	if strings.EqualFold(name, "Authorization") {
		if tok, ok := hooks.BearerToken(r); ok && d.Keys.Match(tok) {
			return &hydraExchange{d: d}, nil
		}
	}
	return nil, hooks.AuthFailure("hydra-api-key", "wrong API key in %s header", name)
}

func (x *hydraExchange) Decode(body []byte) (Login, error) {
	req, err := DecodeHydraHook(body)
	if err != nil {
		return Login{}, err
	}
	ev, err := req.Event(x.d.Connection)
	if err != nil {
		return Login{}, err
	}
	x.req = req
	return Login{Event: ev, Attrs: []slog.Attr{slog.String("grant_type", ev.Transaction.GrantType)}}, nil
}

func (x *hydraExchange) Answer(_ context.Context, _ Login, res *runtime.Result) (int, any, error) {
	return HydraAnswer(x.req, res, x.d.Namespace)
}

// DecodeHydraHook decodes a token hook or legacy refresh hook body. Numbers
// are kept as json.Number so claims echoed back to Hydra are byte-exact.
func DecodeHydraHook(body []byte) (*HydraHookRequest, error) {
	var req HydraHookRequest
	if err := runtime.DecodeJSON("hydra token hook", body, &req); err != nil {
		return nil, err
	}
	if req.Session == nil {
		return nil, &runtime.ValidationError{Entity: "hydra token hook", Field: "session", Reason: "required"}
	}
	return &req, nil
}

// Event maps the hook to the native event: subject, client, scopes (granted,
// or requested when Hydra has not granted yet, as for authorization_code),
// audience, grant type, nonce, and the user facts the consent put in the ID
// token's ext or the access token's extra (email, name, groups).
func (req *HydraHookRequest) Event(connection string) (*runtime.Event, error) {
	if connection == "" {
		connection = "hydra"
	}
	tr := req.Request
	if tr == nil {
		tr = req.Requester
	}
	if tr == nil {
		tr = &HydraRequest{}
	}
	s := req.Session
	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin}
	ev.Connection.Name = connection
	ev.Transaction.Protocol = "oauth2"

	ev.Client.ClientID = firstNonEmpty(tr.ClientID, req.ClientID, s.ClientID)
	if ev.Client.ClientID == "" {
		return nil, &runtime.ValidationError{Entity: "hydra token hook", Field: "request.client_id", Reason: "required"}
	}
	var ext map[string]any
	if s.IDToken != nil {
		ev.User.UserID = s.IDToken.Subject
		ev.User.Username = s.IDToken.Username
		if c := s.IDToken.Claims; c != nil {
			ev.User.UserID = firstNonEmpty(ev.User.UserID, c.Sub)
			ev.Transaction.Nonce = c.Nonce
			ext = c.Ext
		}
	}
	ev.User.UserID = firstNonEmpty(ev.User.UserID, req.Subject)

	grants := tr.GrantTypes
	if len(grants) > 0 {
		ev.Transaction.GrantType = grants[0]
	}
	if slices.Contains(grants, "client_credentials") {
		ev.Trigger = runtime.TriggerCredentialsExchange
		ev.Transaction.GrantType = "client_credentials"
		// Hydra sets the subject to the client id; be explicit when it does not.
		ev.User.UserID = firstNonEmpty(ev.User.UserID, ev.Client.ClientID)
	}
	if ev.User.UserID == "" {
		return nil, &runtime.ValidationError{Entity: "hydra token hook", Field: "session.id_token.subject", Reason: "required"}
	}

	scopes := tr.GrantedScopes
	if len(scopes) == 0 {
		scopes = req.GrantedScopes
	}
	if len(scopes) == 0 {
		scopes = tr.RequestedScopes
	}
	ev.Transaction.RequestedScopes = slices.Clone(scopes)
	aud := tr.GrantedAudience
	if len(aud) == 0 {
		aud = req.GrantedAudience
	}
	if len(aud) > 0 {
		ev.Transaction.Audience = aud[0]
	} else if a := tr.Payload["audience"]; len(a) > 0 {
		ev.Transaction.Audience, _, _ = strings.Cut(strings.TrimSpace(a[0]), " ")
	}

	// User facts the login/consent app put into the session.
	for _, src := range []map[string]any{ext, s.Extra} {
		if v, ok := src["email"].(string); ok && ev.User.Email == "" {
			ev.User.Email = v
		}
		if v, ok := src["email_verified"].(bool); ok && !ev.User.EmailVerified {
			ev.User.EmailVerified = v
		}
		if v, ok := src["name"].(string); ok && ev.User.Name == "" {
			ev.User.Name = v
		}
		if len(ev.User.Groups) == 0 {
			ev.User.Groups = stringList(src["groups"])
		}
	}
	return ev, nil
}

// HydraAnswer turns a pipeline result into the hook's status and body: 403
// on deny, 204 when there is nothing to add or remove, otherwise 200 with
// both maps. Incoming keys under namespace (claims of an earlier run) are
// replaced by this run's.
func HydraAnswer(req *HydraHookRequest, res *runtime.Result, namespace string) (int, any, error) {
	if !res.Decision.Allowed {
		code := res.Decision.Code
		if code == "" {
			code = runtime.CodeAccessDenied
		}
		return http.StatusForbidden, hooks.ErrorBody{Error: code, Description: res.Decision.Reason}, nil
	}
	var ext map[string]any
	if it := req.Session.IDToken; it != nil && it.Claims != nil {
		ext = it.Claims.Ext
	}
	stale := hasPrefixedKey(req.Session.Extra, namespace) || hasPrefixedKey(ext, namespace)
	if len(res.IDTokenClaims) == 0 && len(res.AccessTokenClaims) == 0 && !stale {
		return http.StatusNoContent, nil, nil
	}
	var out HydraHookResponse
	out.Session.AccessToken = withoutPrefix(req.Session.Extra, namespace)
	for _, c := range res.AccessTokenClaims {
		out.Session.AccessToken[c.Name] = c.Value
	}
	out.Session.IDToken = withoutPrefix(ext, namespace)
	for _, c := range res.IDTokenClaims {
		if _, kept := out.Session.IDToken[c.Name]; kept && slices.Contains(hydraKeptIDClaims, c.Name) {
			continue
		}
		out.Session.IDToken[c.Name] = c.Value
	}
	return http.StatusOK, &out, nil
}

func hasPrefixedKey(m map[string]any, prefix string) bool {
	if prefix == "" {
		return false
	}
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// withoutPrefix copies m without the keys under prefix (never nil).
func withoutPrefix(m map[string]any, prefix string) map[string]any {
	out := make(map[string]any, len(m)+4)
	for k, v := range m {
		if prefix != "" && strings.HasPrefix(k, prefix) {
			continue
		}
		out[k] = v
	}
	return out
}
