package rules_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// TestPersistPerClientStopsFlapping (issue 15): a user alternating between
// two clients. In the extension mode every switch rewrites
// app_metadata.authorization (roles are per client); per_client keeps each
// client's lists apart, so after one login on each nothing changes any more.
func TestPersistPerClientStopsFlapping(t *testing.T) {
	ctx := context.Background()
	store := loadStore(t)
	for _, c := range []struct {
		mode        string
		wantChanged int
	}{{rules.PersistExtension, 6}, {rules.PersistPerClient, 0}} {
		r, err := rules.NewAuthorization(store, store, "https://example.com/", runtime.SettingsDecoder(map[string]any{
			"persist_mode": c.mode, "persist": map[string]any{"groups": true, "roles": true},
		}))
		if err != nil {
			t.Fatal(err)
		}
		prof := runtime.Profile{UserID: "auth0|alice", AppMetadata: map[string]any{}, UserMetadata: map[string]any{}}
		changed := 0
		for i := range 8 {
			client := []string{"portal", "hydra-portal"}[i%2]
			ev := &runtime.Event{User: runtime.User{UserID: "auth0|alice", AppMetadata: runtime.CloneMap(prof.AppMetadata)}, Client: runtime.Client{ClientID: client}}
			var out runtime.Commands
			if err := r.Run(ctx, ev, &out); err != nil {
				t.Fatal(err)
			}
			if i >= 2 && !authz.PatchIsNoop(prof, out.AppMetadata, nil) {
				changed++
			}
			if prof, err = authz.MergeProfile(prof, prof.UserID, out.AppMetadata, nil, 0); err != nil {
				t.Fatal(err)
			}
			prof = canonical(t, prof) // as a store keeps it: decoded JSON
		}
		if changed != c.wantChanged {
			t.Errorf("persist_mode %s: %d of the last 6 logins changed the profile, want %d", c.mode, changed, c.wantChanged)
		}
	}
}

func canonical(t *testing.T, p runtime.Profile) runtime.Profile {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var out runtime.Profile
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPersistPerClientIgnoresAudience (issue 15, found by the load test): a
// user alternating between logins to one client with and without an API
// audience. Roles bound to the audience (resource-server roles) go into
// that login's tokens but not into clients.<client_id>: kept there they
// flipped at every such switch, a profile write per login.
func TestPersistPerClientIgnoresAudience(t *testing.T) {
	ctx := context.Background()
	store := loadStoreFile(t, "../samples/data/claimsmith-full.json")
	r, err := rules.NewAuthorization(store, store, "https://example.com/", runtime.SettingsDecoder(map[string]any{
		"persist_mode": rules.PersistPerClient, "persist": map[string]any{"groups": true, "roles": true},
		"access_token": map[string]any{"roles": true},
	}))
	if err != nil {
		t.Fatal(err)
	}
	const api = "https://api.example.com/"
	prof := runtime.Profile{UserID: "auth0|alice", AppMetadata: map[string]any{}, UserMetadata: map[string]any{}}
	changed := 0
	var tokenRoles [2][]string
	for i := range 8 {
		ev := &runtime.Event{User: runtime.User{UserID: "auth0|alice", AppMetadata: runtime.CloneMap(prof.AppMetadata)},
			Client: runtime.Client{ClientID: "portal-client"}, Transaction: runtime.Transaction{Audience: []string{api, ""}[i%2]}}
		var out runtime.Commands
		if err := r.Run(ctx, ev, &out); err != nil {
			t.Fatal(err)
		}
		tokenRoles[i%2] = out.Authorization.Roles
		if i >= 1 && !authz.PatchIsNoop(prof, out.AppMetadata, nil) {
			changed++
		}
		if prof, err = authz.MergeProfile(prof, prof.UserID, out.AppMetadata, nil, 0); err != nil {
			t.Fatal(err)
		}
		prof = canonical(t, prof)
	}
	if changed != 0 {
		t.Errorf("%d of the last 7 logins changed the profile, want 0: %v", changed, prof.AppMetadata)
	}
	if len(tokenRoles[0]) <= len(tokenRoles[1]) {
		t.Fatalf("the fixture must give alice an audience-bound role: with the audience %v, without %v", tokenRoles[0], tokenRoles[1])
	}
	kept := prof.AppMetadata["authorization"].(map[string]any)["clients"].(map[string]any)["portal-client"].(map[string]any)["roles"]
	if got, _ := json.Marshal(kept); string(got) != mustJSON(t, tokenRoles[1]) {
		t.Errorf("kept roles %s, want the client's own %v", got, tokenRoles[1])
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
