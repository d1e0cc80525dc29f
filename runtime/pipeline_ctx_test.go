package runtime

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

func TestRuleCtx(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	defer cancel()
	deadline := time.Now().Add(30 * time.Millisecond)
	rc := &ruleCtx{parent: parent, deadline: deadline, now: time.Now}
	if d, ok := rc.Deadline(); !ok || !d.Equal(deadline) {
		t.Fatal("deadline")
	}
	if rc.Value(ctxKey{}) != "v" || rc.Err() != nil {
		t.Fatal("value or early error")
	}
	// Done from several goroutines at once yields one channel that closes
	// at the deadline.
	var wg sync.WaitGroup
	chans := make([]<-chan struct{}, 8)
	for i := range chans {
		wg.Add(1)
		go func() { defer wg.Done(); chans[i] = rc.Done() }()
	}
	wg.Wait()
	for _, c := range chans[1:] {
		if c != chans[0] {
			t.Fatal("Done returned different channels")
		}
	}
	select {
	case <-chans[0]:
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed")
	}
	if !errors.Is(rc.Err(), context.DeadlineExceeded) {
		t.Fatalf("err %v", rc.Err())
	}
	rc.release()

	// Without Done, Err answers from the clock; parent cancellation wins.
	clock := time.Unix(100, 0)
	rc = &ruleCtx{parent: parent, deadline: time.Unix(101, 0), now: func() time.Time { return clock }}
	if rc.Err() != nil {
		t.Fatal("early")
	}
	clock = time.Unix(101, 0)
	if !errors.Is(rc.Err(), context.DeadlineExceeded) {
		t.Fatal("deadline not reported")
	}
	cancel()
	if !errors.Is(rc.Err(), context.Canceled) {
		t.Fatalf("parent cancellation: %v", rc.Err())
	}
	rc.release() // no Done: nothing to release
}
