package authz_test

import (
	"os"
	"slices"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// TestSampleData pins what samples/data/README.md promises each sample user
// resolves to, so the README and the sample file cannot drift apart.
func TestSampleData(t *testing.T) {
	for _, file := range []string{samplePath, "../../samples/data/claimsmith-full.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		d, err := authz.ParseDocument(raw)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		m := authz.NewModel(d, 1)
		const api = "https://api.example.com/"
		for _, c := range []struct {
			q                   authz.PolicyQuery
			groups, roles, perm []string
		}{
			{authz.PolicyQuery{UserID: "auth0|alice", ClientID: "portal-client"},
				ss("Company", "Engineering", "Platform", "SRE", "Portal Admins"), ss("user", "editor", "admin"), ss("read:documents", "write:documents", "manage:portal")},
			{authz.PolicyQuery{UserID: "auth0|alice", ClientID: "reports-client"},
				ss("Company", "Engineering", "Platform", "SRE", "Portal Admins"), ss("admin"), ss("read:reports", "export:reports")},
			{authz.PolicyQuery{UserID: "auth0|bob", ClientID: "portal-client"},
				ss("Company", "Engineering"), ss("user", "editor"), ss("read:documents", "write:documents")},
			{authz.PolicyQuery{UserID: "auth0|carol", ClientID: "portal-client", Audience: api},
				ss("Company", "Engineering", "Platform"), ss("user", "editor", "writer"), ss("read:documents", "write:documents", "read:orders", "write:orders")},
			{authz.PolicyQuery{UserID: "auth0|carol", ClientID: "portal-client"},
				ss("Company", "Engineering", "Platform"), ss("user", "editor"), ss("read:documents", "write:documents")},
			{authz.PolicyQuery{UserID: "auth0|dave", ClientID: "reports-client"},
				ss("Company", "Sales"), ss("viewer"), ss("read:reports")},
			{authz.PolicyQuery{UserID: "auth0|erin", ClientID: "portal-client"},
				ss("Company", "Sales"), ss("user", "support"), ss("read:documents", "handle:tickets")},
			{authz.PolicyQuery{UserID: "auth0|frank", ClientID: "portal-client"},
				ss("Contractors"), ss("viewer"), ss("read:documents")},
			{authz.PolicyQuery{UserID: "auth0|grace", ClientID: "reports-client", Audience: api},
				ss("Auditors", "Compliance"), ss("viewer", "reader"), ss("read:reports", "read:orders")},
			{authz.PolicyQuery{UserID: "auth0|heidi", ClientID: "reports-client"},
				ss(), ss("admin"), ss("read:reports", "export:reports")},
			{authz.PolicyQuery{UserID: "auth0|ivan", ClientID: "portal-client", Audience: api},
				ss(), ss("writer"), ss("read:orders", "write:orders")},
			{authz.PolicyQuery{UserID: "auth0|ivan", ClientID: "portal-client"},
				ss(), ss(), ss()},
			{authz.PolicyQuery{UserID: "auth0|judy", ClientID: "portal-client"},
				ss(), ss("support"), ss("read:documents", "handle:tickets")},
			// Hydra's client_credentials subject is the client itself.
			{authz.PolicyQuery{UserID: "portal-client", ClientID: "portal-client"},
				ss(), ss("user"), ss("read:documents")},
			{authz.PolicyQuery{UserID: "auth0|mallory", ClientID: "portal-client", Connection: "corp-ad", IdPGroups: ss(`CORP\Domain Admins`, `CORP\Auditors`)},
				ss("Auditors", "Compliance", "Portal Admins"), ss("admin"), ss("read:documents", "write:documents", "manage:portal")},
			{authz.PolicyQuery{UserID: "auth0|mallory", ClientID: "portal-client", Connection: "google-oauth2", IdPGroups: ss("contractors@example.com", `CORP\Domain Admins`)},
				ss("Contractors"), ss("viewer"), ss("read:documents")},
			{authz.PolicyQuery{UserID: "auth0|mallory", ClientID: "portal-client", IdPGroups: ss(`CORP\Domain Admins`)},
				ss(), ss(), ss()},
		} {
			got := m.Resolve(c.q)
			if !slices.Equal(got.Groups, c.groups) || !slices.Equal(got.Roles, c.roles) || !slices.Equal(got.Permissions, c.perm) {
				t.Errorf("%s %+v:\n got %q %q %q\nwant %q %q %q", file, c.q, got.Groups, got.Roles, got.Permissions, c.groups, c.roles, c.perm)
			}
		}
	}
}

func ss(v ...string) []string { return v }
