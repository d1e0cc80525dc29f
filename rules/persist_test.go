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
