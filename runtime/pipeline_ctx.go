package runtime

import (
	"context"
	"sync"
	"time"
)

// ruleCtx is the context one rule call runs with: the caller's context plus
// the rule's deadline. It costs one small allocation and no timer unless the
// rule asks for Done: most built-in rules never block, so arming a timer
// (context.WithDeadline: a timer, a child registration and a channel) for
// every rule of every login would be wasted. The first Done call derives a
// real deadline context, so code that selects on Done (go-redis pool waits,
// the wasm host) is interrupted at the deadline as usual. Err and Deadline
// answer from the clock until then, which is what code polling them (and
// go-redis' socket deadlines) needs.
type ruleCtx struct {
	parent   context.Context
	deadline time.Time
	now      func() time.Time

	mu     sync.Mutex
	child  context.Context
	cancel context.CancelFunc
}

func (c *ruleCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *ruleCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.child == nil {
		c.child, c.cancel = context.WithDeadline(c.parent, c.deadline)
	}
	return c.child.Done()
}

func (c *ruleCtx) Err() error {
	c.mu.Lock()
	child := c.child
	c.mu.Unlock()
	if child != nil {
		return child.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !c.now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *ruleCtx) Value(key any) any { return c.parent.Value(key) }

// release stops the derived deadline context, if Done created one.
func (c *ruleCtx) release() {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
}
