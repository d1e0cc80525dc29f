//go:build unix

package rules_test

import (
	"syscall"
	"time"
)

// processCPU is the process's CPU time (user+system). On a shared machine
// wall time per op includes time other processes held the CPU; CPU time
// does not, so benchmarks report both.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
