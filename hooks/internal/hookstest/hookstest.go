// Package hookstest holds the fixtures the tests of the hooks packages share:
// a small authorization document, the real login pipeline over it and an
// enricher that records what it ran. Only tests import it.
package hookstest

import (
	"context"
	"sync"
	"testing"

	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

// NS is the claim namespace of the test pipeline.
const NS = "https://claimsmith.test/"

// The clients of the test document: an interactive application that
// requires roles, and a machine client.
const (
	PortalClient = "portal"
	BatchClient  = "batch-client"
)

// SupabaseDana is the Supabase user of samples/payloads/supabase.
const SupabaseDana = "8ccaa7af-909f-44e7-84cb-67cdccb56be6"

// Document is a small extension document: alice is in Backend, nested
// in Engineering, nested in Staff; carol reaches Engineering through the IdP
// group "ad-eng" on connection "hydra" (Zitadel users through the grant role
// "portal-engineer"); bob is only a contractor; the M2M
// client holds a role directly (its user id is its client id).
func Document(portal, batch string) *authz.Document {
	return &authz.Document{
		Configuration: []authz.Configuration{{ID: "v1", APIKey: "ext-api-key"}},
		Groups: []authz.Group{
			{ID: "g-staff", Name: "Staff", Nested: []string{"g-eng"}, Roles: []string{"r-viewer"}},
			{ID: "g-eng", Name: "Engineering", Nested: []string{"g-backend"}, Roles: []string{"r-editor"},
				Mappings: []authz.Mapping{
					{ID: "m-1", GroupName: "ad-eng", ConnectionName: "hydra"},
					{ID: "m-2", GroupName: "portal-engineer", ConnectionName: "zitadel"},
				}},
			{ID: "g-backend", Name: "Backend", Members: []string{"alice", SupabaseDana}},
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

// NewStore is a memory store holding Document(portal, batch).
func NewStore(t testing.TB, portal, batch string) *memory.Store {
	t.Helper()
	s := memory.New(memory.Options{})
	if _, err := s.Apply(context.Background(), 0, &authz.ReplaceDocument{Doc: Document(portal, batch)}); err != nil {
		t.Fatalf("loading test document: %v", err)
	}
	return s
}

// NewPipeline builds the real login pipeline with the real built-in rules
// over the store, as cmd does: authorization (claims on both tokens,
// persisted into app_metadata.authorization) then required-roles.
func NewPipeline(t testing.TB, store *memory.Store) *runtime.Pipeline {
	t.Helper()
	reg, err := rules.NewRegistry(rules.Deps{Resolver: store, Settings: store, Namespace: NS})
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtime.NewPipeline(context.Background(), runtime.PipelineConfig{
		Namespace: NS,
		Rules: []runtime.RuleEntry{
			{Rule: rules.IDAuthorization, Config: map[string]any{
				"persist": map[string]any{"groups": true, "roles": true, "permissions": true},
			}},
			{Rule: rules.IDRequiredRoles},
		},
	}, runtime.Deps{Registry: reg, Profiles: store, Clients: rules.ClientDirectory(store)})
	if err != nil {
		t.Fatalf("building the pipeline: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Recorder runs Next (the real pipeline) and records the events it was
// given, so tests can check what a dialect handed over and that a refused
// request ran nothing.
type Recorder struct {
	Next runtime.Enricher
	mu   sync.Mutex
	seen []runtime.Event
}

// Run implements runtime.Enricher.
func (e *Recorder) Run(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
	e.mu.Lock()
	e.seen = append(e.seen, *ev)
	e.mu.Unlock()
	return e.Next.Run(ctx, ev)
}

// Runs is the number of runs.
func (e *Recorder) Runs() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

// Last is the event of the last run.
func (e *Recorder) Last() runtime.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[len(e.seen)-1]
}

// Event is a realistic post-login event (about 1 KiB) of alice on the
// portal, asking for minted tokens.
func Event() []byte {
	return []byte(`{
  "user": {"user_id": "alice", "email": "alice@example.com", "email_verified": true, "name": "Alice Example",
    "app_metadata": {"plan": "gold", "tenant": "acme"}, "user_metadata": {"theme": "dark", "locale": "de-DE"},
    "identities": [{"connection": "corp-ad", "provider": "ad", "user_id": "alice", "is_social": false}],
    "groups": ["CORP\\Engineering", "CORP\\VPN Users"], "logins_count": 42},
  "client": {"client_id": "portal", "name": "Portal"},
  "connection": {"id": "con_1", "name": "corp-ad", "strategy": "ad"},
  "request": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "hostname": "login.example.com",
    "method": "GET", "query": {"scope": "openid profile email", "response_type": "code"}},
  "transaction": {"requested_scopes": ["openid", "profile", "email"], "audience": "https://api.example.com/", "protocol": "oidc-basic-profile"},
  "mint": true
}`)
}
