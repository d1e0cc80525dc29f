package hooks_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

const testNS = "https://claimsmith.test/"

// supabaseDana is the Supabase user of samples/payloads/supabase.
const supabaseDana = "8ccaa7af-909f-44e7-84cb-67cdccb56be6"

// testDocument is a small extension document: alice is in Backend, nested
// in Engineering, nested in Staff; carol reaches Engineering through the IdP
// group "ad-eng" on connection "hydra" (Zitadel users through the grant role
// "portal-engineer"); bob is only a contractor; the M2M
// client holds a role directly (its user id is its client id).
func testDocument(portal, batch string) *authz.Document {
	return &authz.Document{
		Configuration: []authz.Configuration{{ID: "v1", APIKey: "ext-api-key"}},
		Groups: []authz.Group{
			{ID: "g-staff", Name: "Staff", Nested: []string{"g-eng"}, Roles: []string{"r-viewer"}},
			{ID: "g-eng", Name: "Engineering", Nested: []string{"g-backend"}, Roles: []string{"r-editor"},
				Mappings: []authz.Mapping{
					{ID: "m-1", GroupName: "ad-eng", ConnectionName: "hydra"},
					{ID: "m-2", GroupName: "portal-engineer", ConnectionName: "zitadel"},
				}},
			{ID: "g-backend", Name: "Backend", Members: []string{"alice", supabaseDana}},
			{ID: "g-contractors", Name: "Contractors", Members: []string{"bob"}},
		},
		Roles: []authz.Role{
			{ID: "r-viewer", Name: "portal-viewer", ApplicationType: authz.TypeClient, ApplicationID: portal, Permissions: []string{"p-read"}},
			{ID: "r-editor", Name: "portal-editor", ApplicationType: authz.TypeClient, ApplicationID: portal, Permissions: []string{"p-write"}},
			{ID: "r-runner", Name: "reports-runner", ApplicationType: authz.TypeClient, ApplicationID: batch, Permissions: []string{"p-run"}, Users: []string{batch}},
		},
		Permissions: []authz.Permission{
			{ID: "p-read", Name: "docs:read", ApplicationType: authz.TypeClient, ApplicationID: portal},
			{ID: "p-write", Name: "docs:write", ApplicationType: authz.TypeClient, ApplicationID: portal},
			{ID: "p-run", Name: "reports:run", ApplicationType: authz.TypeClient, ApplicationID: batch},
		},
		Claimsmith: &authz.Section{Applications: []authz.Application{
			{ClientID: portal, Name: "Portal", Metadata: map[string]string{"required_roles": "portal-viewer, portal-editor"}},
			{ClientID: batch, Name: "Batch"},
		}},
	}
}

func newTestStore(t testing.TB, portal, batch string) *memory.Store {
	t.Helper()
	s := memory.New(memory.Options{})
	if _, err := s.Apply(context.Background(), 0, &authz.ReplaceDocument{Doc: testDocument(portal, batch)}); err != nil {
		t.Fatalf("loading test document: %v", err)
	}
	return s
}

// storeEnricher is a small but real enricher for the dialect tests: it
// resolves the policy from the store, namespaces the claims, persists
// app_metadata.authorization by merge and enforces required_roles, as the
// built-in rules do. It records the events it ran.
type storeEnricher struct {
	store *memory.Store
	mu    sync.Mutex
	seen  []runtime.Event
	fail  error
}

func (e *storeEnricher) Run(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
	e.mu.Lock()
	e.seen = append(e.seen, *ev)
	fail := e.fail
	e.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	p, err := e.store.ResolvePolicy(ctx, authz.PolicyQuery{
		UserID: ev.User.UserID, ClientID: ev.Client.ClientID, Audience: ev.Transaction.Audience,
		Connection: ev.Connection.Name, IdPGroups: ev.User.Groups,
	})
	if err != nil {
		return nil, err
	}
	res := &runtime.Result{Decision: runtime.Decision{Allowed: true}}
	res.Authorization = &runtime.Authorization{Groups: p.Groups, Roles: p.Roles, Permissions: p.Permissions}
	if ev.Trigger != runtime.TriggerCredentialsExchange {
		res.IDTokenClaims.Set(testNS+"groups", p.Groups)
		res.IDTokenClaims.Set(testNS+"roles", p.Roles)
	}
	if len(p.Roles) > 0 || len(p.Permissions) > 0 {
		res.AccessTokenClaims.Set(testNS+"roles", p.Roles)
		res.AccessTokenClaims.Set(testNS+"permissions", p.Permissions)
	}
	if ev.Trigger != runtime.TriggerCredentialsExchange {
		res.AppMetadata = map[string]any{"authorization": map[string]any{"groups": toAny(p.Groups), "roles": toAny(p.Roles), "permissions": toAny(p.Permissions)}}
		if _, err := e.store.PatchProfile(ctx, ev.User.UserID, res.AppMetadata, nil); err != nil {
			return nil, err
		}
	}
	app, err := e.store.Application(ctx, ev.Client.ClientID)
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return nil, err
	}
	if req := app.Metadata["required_roles"]; req != "" {
		ok := false
		for _, r := range strings.Split(req, ",") {
			if slices.Contains(p.Roles, strings.TrimSpace(r)) {
				ok = true
			}
		}
		if !ok {
			res.Decision = runtime.Decision{Reason: fmt.Sprintf("You do not have the required role to access %s", app.Name), Code: runtime.CodeUnauthorized, Rule: "required-roles"}
			res.IDTokenClaims, res.AccessTokenClaims = nil, nil
		}
	}
	return res, nil
}

func (e *storeEnricher) runs() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

func (e *storeEnricher) last() runtime.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[len(e.seen)-1]
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
