package runtime_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

// TestDryRunPersistsNothing: DryRun reads and merges the stored profile as
// Run does and returns the same patches, but writes nothing; Run then
// persists them.
func TestDryRunPersistsNothing(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Options{})
	if _, err := store.PatchProfile(ctx, "auth0|alice", map[string]any{"plan": "silver"}, nil); err != nil {
		t.Fatal(err)
	}
	var saw any
	reg := testRules(t, map[string]ruleFunc{
		"patch": func(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
			saw = ev.User.AppMetadata["plan"]
			out.AppMetadata = map[string]any{"logins": 1.0}
			return nil
		},
	})
	p := build(t, runtime.PipelineConfig{Rules: entries("patch")}, runtime.Deps{Registry: reg, Profiles: store})
	res, err := p.DryRun(ctx, event())
	if err != nil {
		t.Fatal(err)
	}
	if saw != "silver" || !reflect.DeepEqual(res.AppMetadata, map[string]any{"logins": 1.0}) || len(res.Trace) != 1 {
		t.Fatalf("dry run: saw plan %v, result %+v", saw, res)
	}
	prof, _ := store.Profile(ctx, "auth0|alice")
	if _, written := prof.AppMetadata["logins"]; written {
		t.Fatalf("the dry run persisted: %v", prof.AppMetadata)
	}
	run(t, p, event())
	prof, _ = store.Profile(ctx, "auth0|alice")
	if prof.AppMetadata["logins"] != 1.0 {
		t.Fatalf("the real run did not persist: %v", prof.AppMetadata)
	}
}
