package dashboard

import (
	"context"
	"strings"
	"testing"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// TestAppSaveKeepsClientRegistration: saving an application's name and
// metadata in the dashboard keeps its OAuth client registration (made by
// /api/clients), and neither the page nor the audit log shows the secret's
// hash.
func TestAppSaveKeepsClientRegistration(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cred, _, err := f.svc.CreateClient(ctx, radmin.Caller{KeyName: "ops"}, radmin.ClientSpec{ClientID: "portal-client",
		GrantTypes: []string{"client_credentials"}}, nil, radmin.IfMatch{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.store.Application(ctx, "portal-client")
	if err != nil || a.OAuth == nil {
		t.Fatalf("%+v %v", a, err)
	}
	hash := strings.TrimPrefix(a.OAuth.SecretHash, "sha256:")
	b := f.browser(t).signIn(f.all)
	v := b.form(Prefix + "applications/portal-client")
	v.Set("name", "Portal 2")
	v.Set("metadata", "required_roles=editor")
	if res := b.post(Prefix+"applications/portal-client/save", v); res.status >= 400 {
		t.Fatalf("save: %d %s", res.status, res.body)
	}
	a, err = f.store.Application(ctx, "portal-client")
	if err != nil || a.Name != "Portal 2" || a.OAuth == nil || strings.TrimPrefix(a.OAuth.SecretHash, "sha256:") != hash {
		t.Fatalf("the save dropped or changed the client registration: %+v %v", a, err)
	}
	if body := b.get(Prefix + "applications/portal-client").body; strings.Contains(body, hash) || strings.Contains(body, cred.ClientSecret) {
		t.Fatal("the application page shows the secret or its hash")
	}
	recs, err := f.audit.List(ctx, radmin.AuditQuery{PerPage: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs.Records {
		if strings.Contains(string(r.Before)+string(r.After), hash) {
			t.Fatalf("audit record %s holds the secret's hash", r.Action)
		}
	}
}
