package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// PolicyHandler is the Auth0 Authorization Extension's policy endpoint,
// POST /api/users/{user_id}/policy/{client_id}, so an Auth0 rule or Action
// written for the extension works unchanged against claimsmith: header
// x-api-key, body {"connectionName": string (required), "groups": [string]},
// answer {"groups", "roles", "permissions"} (names, as the extension).
type PolicyHandler struct {
	Resolver authz.PolicyResolver
	Keys     *KeySet
	// Settings, when set, also accepts the apikey of the store's extension
	// configuration record: after importing an extension export, the key
	// Auth0 rules and Actions already hold keeps working.
	Settings authz.RecordReader
	MaxBody  int64
	Log      *slog.Logger
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

func (h *PolicyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := h.serve(w, r)
	if err != nil {
		logf(h.Log).LogAttrs(r.Context(), levelOf(err), "policy request refused", slog.String("error", err.Error()))
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, resp)
}

func (h *PolicyHandler) serve(w http.ResponseWriter, r *http.Request) (*PolicyResponse, error) {
	key := r.Header.Get("x-api-key")
	if key == "" {
		return nil, authErr("x-api-key", "missing x-api-key header")
	}
	if !h.Keys.Match(key) && !h.storeKeyMatches(r.Context(), key) {
		return nil, authErr("x-api-key", "wrong API key")
	}
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	body, err := readBody(w, r, h.MaxBody)
	if err != nil {
		return nil, err
	}
	userID, clientID := r.PathValue("user_id"), r.PathValue("client_id")
	if userID == "" || clientID == "" {
		return nil, &runtime.ValidationError{Entity: "policy request", Field: "path", Reason: "user_id and client_id are required"}
	}
	req, err := DecodePolicyRequest(body)
	if err != nil {
		return nil, err
	}
	p, err := h.Resolver.ResolvePolicy(r.Context(), authz.PolicyQuery{
		UserID: userID, ClientID: clientID, Connection: req.ConnectionName, IdPGroups: req.Groups,
	})
	if err != nil {
		return nil, fmt.Errorf("resolving policy of user %q for client %q: %w", userID, clientID, err)
	}
	out := &PolicyResponse{Groups: p.Groups, Roles: p.Roles, Permissions: p.Permissions}
	for _, l := range []*[]string{&out.Groups, &out.Roles, &out.Permissions} {
		if *l == nil {
			*l = []string{}
		}
	}
	return out, nil
}

func (h *PolicyHandler) storeKeyMatches(ctx context.Context, key string) bool {
	if h.Settings == nil {
		return false
	}
	// One record, not the model: this runs on every policy request.
	doc, _, err := h.Settings.Records(ctx, authz.Footprint{Configuration: true})
	if err != nil || doc == nil {
		return false
	}
	var keys []string
	for _, c := range doc.Configuration {
		keys = append(keys, c.APIKey)
	}
	return NewKeySet(keys...).Match(key)
}

// DecodePolicyRequest decodes the policy body as the extension reads it:
// connectionName must be a non-empty string; groups counts only when it is
// an array (its string items); other keys are ignored.
func DecodePolicyRequest(body []byte) (*PolicyRequest, error) {
	var raw struct {
		ConnectionName json.RawMessage `json:"connectionName"`
		Groups         json.RawMessage `json:"groups"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, jsonError("policy request", err)
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
