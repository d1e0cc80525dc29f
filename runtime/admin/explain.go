package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// UserView is what an operator sees of one user for one login's client and
// audience: direct and effective groups, roles and permissions, each with
// why (authz.Explanation), and the stored profile.
type UserView struct {
	UserID     string   `json:"user_id"`
	ClientID   string   `json:"client_id"`
	Audience   string   `json:"audience,omitempty"`
	Connection string   `json:"connection,omitempty"`
	IdPGroups  []string `json:"idp_groups,omitempty"`
	authz.Explanation
	// Profile is the stored app_metadata and user_metadata; nil when the
	// store keeps no profiles.
	Profile *runtime.Profile `json:"profile,omitempty"`
}

// profileReader is the read half of runtime.ProfileStore; every backend
// has it, a bare authz store may not.
type profileReader interface {
	Profile(ctx context.Context, userID string) (runtime.Profile, error)
}

// maxQueryID bounds the ids of an explain query (user ids, client ids and
// audiences are far shorter in practice).
const maxQueryID = 1024

// Explain answers why the user of q gets what a login at q's client (and
// audience, connection, IdP groups) would get. Its effective lists are
// exactly what the login's policy resolution answers at the same revision.
func (s *Service) Explain(ctx context.Context, q authz.PolicyQuery) (UserView, error) {
	for _, f := range []struct{ name, v string }{{"user_id", q.UserID}, {"client_id", q.ClientID}} {
		if f.v == "" {
			return UserView{}, &runtime.ValidationError{Entity: "query", Field: f.name, Reason: "is required"}
		}
	}
	for _, f := range []struct{ name, v string }{{"user_id", q.UserID}, {"client_id", q.ClientID}, {"audience", q.Audience}, {"connection", q.Connection}} {
		if len(f.v) > maxQueryID {
			return UserView{}, &runtime.ValidationError{Entity: "query", Field: f.name, Reason: fmt.Sprintf("is %d bytes, at most %d", len(f.v), maxQueryID)}
		}
	}
	m, err := s.store.Snapshot(ctx)
	if err != nil {
		return UserView{}, err
	}
	v := UserView{UserID: q.UserID, ClientID: q.ClientID, Audience: q.Audience, Connection: q.Connection, IdPGroups: q.IdPGroups,
		Explanation: m.Explain(q)}
	if pr, ok := s.store.(profileReader); ok {
		p, err := pr.Profile(ctx, q.UserID)
		if err != nil {
			return UserView{}, fmt.Errorf("profile of user %q: %w", q.UserID, err)
		}
		v.Profile = &p
	}
	return v, nil
}

// AppChoice is an application or API a login can be explained for.
type AppChoice struct {
	ID   string `json:"id"`
	Type string `json:"type"` // authz.TypeClient or authz.TypeResourceServer
	Name string `json:"name,omitempty"`
}

// AppChoices lists the registered applications and every application id
// roles name (client ids and API audiences), sorted by id: what a user view
// offers to explain a login for.
func (s *Service) AppChoices(ctx context.Context) ([]AppChoice, error) {
	m, err := s.store.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	doc := m.Document()
	seen := map[string]int{}
	var out []AppChoice
	add := func(id, typ, name string) {
		if id == "" {
			return
		}
		if i, ok := seen[id]; ok {
			if out[i].Name == "" {
				out[i].Name = name
			}
			return
		}
		seen[id] = len(out)
		out = append(out, AppChoice{ID: id, Type: typ, Name: name})
	}
	if doc.Claimsmith != nil {
		for _, a := range doc.Claimsmith.Applications {
			add(a.ClientID, authz.TypeClient, a.Name)
		}
	}
	for _, r := range doc.Roles {
		typ := authz.TypeClient
		if r.ApplicationType == authz.TypeResourceServer {
			typ = authz.TypeResourceServer
		}
		add(r.ApplicationID, typ, "")
	}
	slices.SortFunc(out, func(a, b AppChoice) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
