//go:build !linux

package loadtest

import (
	"context"
	"time"
)

func runLoop(context.Context, Options, Mix, int, time.Duration) (*Report, error) {
	return nil, errNoLoop
}
