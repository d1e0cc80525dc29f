package admintest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
)

// RunClients: OAuth clients registered through the admin service are
// persisted by the backend (a restart sees them), audited without secret or
// hash, refused when they collide with a configured client or exist, and
// their secret is shown once: the list holds neither it nor its hash.
func RunClients(t *testing.T, b Backend) {
	if b.Store == nil {
		t.Skip("backend has no authorization store")
	}
	ctx := context.Background()
	audit := b.Audit(t, nil)
	st := b.Store(t)
	svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	caller := admin.Caller{KeyName: "ops"}
	cred, res, err := svc.CreateClient(ctx, caller, admin.ClientSpec{ClientID: "svc", Name: "Service",
		GrantTypes: []string{"client_credentials"}, Audiences: []string{"https://api.example.com"}}, []string{"configured"}, admin.IfMatch{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cred.ClientSecret) < 40 || !cred.HasSecret || cred.AuthMethod != "client_secret_basic" || res.Revision == 0 {
		t.Fatalf("create: %+v rev %d", cred, res.Revision)
	}
	first := cred.ClientSecret
	for _, c := range []struct {
		name string
		spec admin.ClientSpec
		want error
	}{
		{"configured id", admin.ClientSpec{ClientID: "configured"}, runtime.ErrExists},
		{"existing", admin.ClientSpec{ClientID: "svc"}, runtime.ErrExists},
		{"no id", admin.ClientSpec{}, runtime.ErrInvalid},
		{"bad grant", admin.ClientSpec{ClientID: "x", GrantTypes: []string{"password"}}, runtime.ErrInvalid},
		{"bad method", admin.ClientSpec{ClientID: "x", AuthMethod: "none"}, runtime.ErrInvalid},
		{"jwt without keys", admin.ClientSpec{ClientID: "x", AuthMethod: "private_key_jwt"}, runtime.ErrInvalid},
		{"bad jwks", admin.ClientSpec{ClientID: "x", AuthMethod: "private_key_jwt", JWKS: json.RawMessage(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)}, runtime.ErrInvalid},
	} {
		rev, _ := st.Revision(ctx)
		if _, _, err := svc.CreateClient(ctx, caller, c.spec, []string{"configured"}, admin.IfMatch{}); !errors.Is(err, c.want) {
			t.Errorf("%s: want %v, got %v", c.name, c.want, err)
		}
		if now, _ := st.Revision(ctx); now != rev {
			t.Errorf("%s: a refused create changed the store (revision %d → %d)", c.name, rev, now)
		}
	}
	if _, _, err := svc.RotateClientSecret(ctx, caller, "svc", admin.Expect(res.Revision+7)); !errors.As(err, new(*runtime.ConflictError)) {
		t.Fatalf("rotate with a stale If-Match: %v", err)
	}
	rot, res2, err := svc.RotateClientSecret(ctx, caller, "svc", admin.Expect(res.Revision))
	if err != nil || rot.ClientSecret == "" || rot.ClientSecret == first {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	hash := func(s admin.Store) string {
		a, err := s.Application(ctx, "svc")
		if err != nil || a.OAuth == nil {
			t.Fatalf("application svc: %+v %v", a, err)
		}
		return a.OAuth.SecretHash
	}
	stored := hash(st)
	if stored == "" || strings.Contains(stored, rot.ClientSecret) {
		t.Fatalf("stored hash %q", stored)
	}
	// A restart (another view of the backend) sees the registration.
	if c, ok := st.(io.Closer); ok {
		_ = c.Close()
	}
	st = b.Store(t)
	svc, err = admin.NewService(admin.ServiceConfig{Store: st, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	if hash(st) != stored {
		t.Fatal("the rotated hash was not persisted")
	}
	page, err := svc.Clients(ctx, admin.ListQuery{})
	if err != nil || page.Total != 1 || page.Revision != res2.Revision {
		t.Fatalf("list: %+v %v", page, err)
	}
	listed, _ := json.Marshal(page.Items)
	for _, secret := range []string{first, rot.ClientSecret, stored, strings.TrimPrefix(stored, "sha256:"), "secret_hash"} {
		if strings.Contains(string(listed), secret) {
			t.Fatalf("the list shows %q: %s", secret, listed)
		}
	}
	recs, err := audit.List(ctx, admin.AuditQuery{PerPage: 10})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs.Records {
		actions = append(actions, r.Action)
		raw := string(r.Before) + string(r.After)
		if strings.Contains(raw, strings.TrimPrefix(stored, "sha256:")) || strings.Contains(raw, rot.ClientSecret) || strings.Contains(raw, first) {
			t.Fatalf("audit record %s holds a secret or hash: %s", r.Action, raw)
		}
	}
	if strings.Join(actions, " ") != "client.rotate_secret client.create" {
		t.Fatalf("audit actions %v", actions)
	}
	// The application outlives the registration when it has a name.
	if _, err := svc.DeleteClient(ctx, caller, "svc", admin.IfMatch{}); err != nil {
		t.Fatal(err)
	}
	if a, err := st.Application(ctx, "svc"); err != nil || a.OAuth != nil || a.Name != "Service" {
		t.Fatalf("after delete: %+v %v", a, err)
	}
	if _, err := svc.DeleteClient(ctx, caller, "svc", admin.IfMatch{}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// A registration that was all an application held takes it along.
	if _, _, err := svc.CreateClient(ctx, caller, admin.ClientSpec{ClientID: "bare"}, nil, admin.IfMatch{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteClient(ctx, caller, "bare", admin.IfMatch{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Application(ctx, "bare"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("bare application after delete: %v", err)
	}
}
