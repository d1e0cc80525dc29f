package login

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// PatternPolicy is the extension's policy endpoint.
const PatternPolicy = "POST /api/users/{user_id}/policy/{client_id}"

// PolicyConfig configures the extension's policy endpoint.
type PolicyConfig struct {
	APIKey    string `yaml:"api_key"`
	APIKeyEnv string `yaml:"api_key_env"`
	// StoreAPIKey also accepts the apikey of the imported extension
	// configuration record, so Auth0 rules keep their key unchanged.
	StoreAPIKey bool `yaml:"store_apikey"`
}

// Policy is the Auth0 Authorization Extension's policy endpoint,
// POST /api/users/{user_id}/policy/{client_id}, so an Auth0 rule or Action
// written for the extension works unchanged against claimsmith: header
// x-api-key, body {"connectionName": string (required), "groups": [string]},
// answer {"groups", "roles", "permissions"} (names, as the extension). It
// runs no pipeline: its handler's Run is a PolicyRunner.
type Policy struct {
	Keys *hooks.KeySet
	// Settings, when set, also accepts the apikey of the store's extension
	// configuration record: after importing an extension export, the key
	// Auth0 rules and Actions already hold keeps working.
	Settings authz.RecordReader
}

func policyKind() Kind {
	return Kind{Name: "auth0", Example: policyExample, Build: fromSection(func(c *Config) *PolicyConfig { return c.Policy }),
		Routes: []Route{{PatternPolicy, "the Authorization Extension's policy endpoint (x-api-key)"}}}
}

const policyExample = `policy:
  api_key_env: CLAIMSMITH_EXTENSION_API_KEY
  store_apikey: true               # also accept the imported extension's apikey
`

func (pc *PolicyConfig) secret() (string, string, string) {
	return "policy.api_key", pc.APIKey, pc.APIKeyEnv
}

func (pc *PolicyConfig) build(deps Deps, key string) ([]*Handler, error) {
	if deps.Resolver == nil {
		return nil, fmt.Errorf("%w: hooks.policy: no authorization store", runtime.ErrInvalid)
	}
	d := &Policy{Keys: hooks.NewKeySet(splitSecrets(key)...)}
	if pc.StoreAPIKey {
		if deps.Settings == nil {
			return nil, fmt.Errorf("%w: hooks.policy.store_apikey: the store cannot be read", runtime.ErrInvalid)
		}
		d.Settings = deps.Settings
	}
	if d.Keys.Len() == 0 && d.Settings == nil {
		return nil, fmt.Errorf("%w: hooks.policy.api_key_env: required (or store_apikey: true)", runtime.ErrInvalid)
	}
	return []*Handler{{Dialect: d, Run: PolicyRunner{Resolver: deps.Resolver}}}, nil
}

// PolicyRequest is the extension's policy request body.
type PolicyRequest struct {
	ConnectionName string
	Groups         []string
}

// PolicyResponse is the extension's answer; lists are never null.
type PolicyResponse struct {
	Groups      []string `json:"groups"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
}

type policyExchange struct {
	headerKey
	userID, clientID string
}

// Accept checks the x-api-key header.
func (d *Policy) Accept(r *http.Request) (Exchange, error) {
	key := r.Header.Get("x-api-key")
	if key == "" {
		return nil, hooks.AuthFailure("x-api-key", "missing x-api-key header")
	}
	if !d.Keys.Match(key) && !d.storeKeyMatches(r.Context(), key) {
		return nil, hooks.AuthFailure("x-api-key", "wrong API key")
	}
	return &policyExchange{userID: r.PathValue("user_id"), clientID: r.PathValue("client_id")}, nil
}

func (d *Policy) storeKeyMatches(ctx context.Context, key string) bool {
	if d.Settings == nil {
		return false
	}
	// One record, not the model: this runs on every policy request.
	doc, _, err := d.Settings.Records(ctx, authz.Footprint{Configuration: true})
	if err != nil || doc == nil {
		return false
	}
	var keys []string
	for _, c := range doc.Configuration {
		keys = append(keys, c.APIKey)
	}
	return hooks.NewKeySet(keys...).Match(key)
}

// Decode maps the request to the question it asks: the user, the client,
// the connection and the IdP groups.
func (x *policyExchange) Decode(body []byte) (Login, error) {
	if x.userID == "" || x.clientID == "" {
		return Login{}, &runtime.ValidationError{Entity: "policy request", Field: "path", Reason: "user_id and client_id are required"}
	}
	req, err := DecodePolicyRequest(body)
	if err != nil {
		return Login{}, err
	}
	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin}
	ev.User.UserID, ev.User.Groups = x.userID, req.Groups
	ev.Client.ClientID = x.clientID
	ev.Connection.Name = req.ConnectionName
	return Login{Event: ev}, nil
}

func (x *policyExchange) Answer(_ context.Context, _ Login, res *runtime.Result) (int, any, error) {
	var a runtime.Authorization
	if res.Authorization != nil {
		a = *res.Authorization
	}
	return http.StatusOK, &PolicyResponse{Groups: nonNil(a.Groups), Roles: nonNil(a.Roles), Permissions: nonNil(a.Permissions)}, nil
}

// nonNil answers an empty list as [] (the extension never sends null).
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// PolicyRunner is what the policy endpoint runs instead of the pipeline:
// the user's policy from the store, as the extension resolved it, in the
// result's Authorization.
type PolicyRunner struct {
	Resolver authz.PolicyResolver
}

// Run implements runtime.Enricher.
func (p PolicyRunner) Run(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
	pol, err := p.Resolver.ResolvePolicy(ctx, authz.PolicyQuery{
		UserID: ev.User.UserID, ClientID: ev.Client.ClientID, Connection: ev.Connection.Name, IdPGroups: ev.User.Groups,
	})
	if err != nil {
		return nil, fmt.Errorf("resolving policy of user %q for client %q: %w", ev.User.UserID, ev.Client.ClientID, err)
	}
	return &runtime.Result{
		Decision:      runtime.Decision{Allowed: true},
		Authorization: &runtime.Authorization{Groups: pol.Groups, Roles: pol.Roles, Permissions: pol.Permissions},
	}, nil
}

// DecodePolicyRequest decodes the policy body as the extension reads it:
// connectionName must be a non-empty string; groups counts only when it is
// an array (its string items); other keys are ignored.
func DecodePolicyRequest(body []byte) (*PolicyRequest, error) {
	var raw struct {
		ConnectionName json.RawMessage `json:"connectionName"`
		Groups         json.RawMessage `json:"groups"`
	}
	if err := runtime.DecodeJSON("policy request", body, &raw); err != nil {
		return nil, err
	}
	var req PolicyRequest
	if len(raw.ConnectionName) == 0 || json.Unmarshal(raw.ConnectionName, &req.ConnectionName) != nil || req.ConnectionName == "" {
		return nil, &runtime.ValidationError{Entity: "policy request", Field: "connectionName", Reason: "required: a non-empty string"}
	}
	if t := bytes.TrimSpace(raw.Groups); len(t) > 0 && t[0] == '[' {
		var items []any
		if err := json.Unmarshal(t, &items); err == nil {
			req.Groups = stringList(items)
		}
	}
	return &req, nil
}
