package hooks_test

import (
	"context"
	"sync"
	"testing"

	"github.com/claimsmith/claimsmith/rules"
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

// newPipeline builds the real login pipeline with the real built-in rules
// over the store, as cmd does: authorization (claims on both tokens,
// persisted into app_metadata.authorization) then required-roles.
func newPipeline(t testing.TB, store *memory.Store) *runtime.Pipeline {
	t.Helper()
	reg, err := rules.NewRegistry(rules.Deps{Resolver: store, Settings: store, Namespace: testNS})
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtime.NewPipeline(context.Background(), runtime.PipelineConfig{
		Namespace: testNS,
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

// recordingEnricher runs the real pipeline and records the events it was
// given, so tests can check what a dialect handed over and that a refused
// request ran nothing.
type recordingEnricher struct {
	next runtime.Enricher
	mu   sync.Mutex
	seen []runtime.Event
}

func (e *recordingEnricher) Run(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
	e.mu.Lock()
	e.seen = append(e.seen, *ev)
	e.mu.Unlock()
	return e.next.Run(ctx, ev)
}

func (e *recordingEnricher) runs() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

func (e *recordingEnricher) last() runtime.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[len(e.seen)-1]
}
