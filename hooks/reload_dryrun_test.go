package hooks_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

// TestReloaderDryRun: DryRun runs the serving generation's DryRun — the
// new one after a reload — and answers ErrNoPipeline (503) for a set
// without a pipeline and after Close.
func TestReloaderDryRun(t *testing.T) {
	var gen atomic.Int64
	withPipeline := atomic.Bool{}
	build := func(context.Context) (*hooks.HookSet, error) {
		n := gen.Add(1)
		if !withPipeline.Load() {
			return &hooks.HookSet{}, nil
		}
		return &hooks.HookSet{DryRun: func(_ context.Context, ev *runtime.Event) (*runtime.Result, error) {
			return &runtime.Result{Decision: runtime.Decision{Allowed: true, Reason: ev.User.UserID}, Trace: []runtime.TraceEntry{{Rule: "gen", Kind: string(rune('0' + n))}}}, nil
		}}, nil
	}
	r, err := hooks.NewReloader(t.Context(), reloadRoutes(), build, nil, hooks.ReloaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := &runtime.Event{User: runtime.User{UserID: "auth0|alice"}}
	if _, err := r.DryRun(t.Context(), ev); !errors.Is(err, hooks.ErrNoPipeline) || !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("no pipeline: %v", err)
	}
	withPipeline.Store(true)
	if _, err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, err := r.DryRun(t.Context(), ev)
	if err != nil || res.Decision.Reason != "auth0|alice" || res.Trace[0].Kind != "2" {
		t.Fatalf("dry run on generation 2: %+v %v", res, err)
	}
	if _, err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res, _ := r.DryRun(t.Context(), ev); res.Trace[0].Kind != "3" {
		t.Fatalf("after a reload the dry run used generation %s", res.Trace[0].Kind)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DryRun(t.Context(), ev); !errors.Is(err, hooks.ErrNoPipeline) {
		t.Fatalf("after Close: %v", err)
	}
}
