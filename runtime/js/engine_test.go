package js

import (
	"context"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestSmoke(t *testing.T) {
	e := New(Options{PoolSize: 1})
	defer e.Close(context.Background())
	start := time.Now()
	r, err := e.LoadModule(context.Background(), runtime.ModuleSpec{Name: "hello", Path: "testdata/hello-action.js"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load: %v", time.Since(start))
	defer r.(*Rule).Cleanup()
	var out runtime.Commands
	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin, User: runtime.User{UserID: "u1", Name: "Alice"}}
	start = time.Now()
	if err := r.Run(context.Background(), ev, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("call: %v %+v", time.Since(start), out)
}
