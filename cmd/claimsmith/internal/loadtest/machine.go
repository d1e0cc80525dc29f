package loadtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// PinToCPU restricts this process — every thread it has now and, through
// inheritance, every thread it starts later — to the one CPU, and sets
// GOMAXPROCS to 1, so the generator's work cannot steal the server's core.
// sched_setaffinity applies to one thread; the threads are listed in
// /proc/self/task.
func PinToCPU(cpu int) error {
	if cpu < 0 || cpu >= goruntime.NumCPU() {
		return fmt.Errorf("--cpu %d: this machine has CPUs 0..%d", cpu, goruntime.NumCPU()-1)
	}
	var set unix.CPUSet
	set.Set(cpu)
	goruntime.GOMAXPROCS(1)
	// Threads may start while the list is read: repeat until a pass
	// finds none left unpinned.
	for range 5 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("--cpu: %w", err)
		}
		changed := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err == nil && cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("--cpu %d: sched_setaffinity: %w", cpu, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return nil
}

// Machine describes where a load test ran, for its report.
type Machine struct {
	CPUModel   string
	CPUs       int
	GOMAXPROCS int
	// Pinned is the generator's CPU (-1: not pinned).
	Pinned int
	Load   string // /proc/loadavg's 1, 5 and 15 minute averages
}

// DescribeMachine reads the CPU model, the CPU count and the load average.
func DescribeMachine(pinned int) Machine {
	m := Machine{CPUs: goruntime.NumCPU(), GOMAXPROCS: goruntime.GOMAXPROCS(0), Pinned: pinned, CPUModel: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	return m
}

// Busy reports whether other work was running when the load test started:
// a one-minute load average of at least half the CPUs (the server and the
// generator were idle then). Numbers from a busy machine describe it, not
// claimsmith.
func (m Machine) Busy() bool {
	f := strings.Fields(m.Load)
	if len(f) == 0 {
		return false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	return err == nil && l >= float64(m.CPUs)/2
}

func (m Machine) String() string {
	pin := "not pinned"
	if m.Pinned >= 0 {
		pin = fmt.Sprintf("pinned to CPU %d", m.Pinned)
	}
	return fmt.Sprintf("%s, %d CPUs; generator %s, GOMAXPROCS %d; load average %s", m.CPUModel, m.CPUs, pin, m.GOMAXPROCS, m.Load)
}

// FsyncLatency is the median time to write 4 KiB to a new file in dir and
// fdatasync it, over n tries: what one group commit of the file store's
// profile journal waits for on that disk.
func FsyncLatency(dir string, n int) (time.Duration, error) {
	f, err := os.CreateTemp(dir, ".fsync-probe-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	buf := make([]byte, 4096)
	lat := make([]time.Duration, 0, n)
	for range max(n, 1) {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}

// Stalls is how much of one CPU a thread that never sleeps got. On a VM
// the host may run other work on the vCPU — steal time the guest often
// cannot see (0 in /proc/stat here) — and a request on that CPU during a
// gap waits for all of it: a machine losing 1 % of its time in gaps of
// several milliseconds has a p99 of several milliseconds whatever the
// server does. The report states it beside the numbers.
type Stalls struct {
	CPU     int
	Span    time.Duration // how long it was measured
	Count   int           // gaps between clock reads longer than StallThreshold
	Lost    time.Duration // their sum
	Largest time.Duration
}

// StallThreshold: a gap between two clock reads of a spinning thread
// longer than this is a stall (the loop itself takes well under 1 µs).
const StallThreshold = 50 * time.Microsecond

func (s Stalls) String() string {
	return fmt.Sprintf("CPU %d lost %.2f%% of %s in %d stalls > %s (largest %s)",
		s.CPU, 100*float64(s.Lost)/float64(s.Span), s.Span.Round(time.Millisecond), s.Count, StallThreshold, s.Largest.Round(time.Microsecond))
}

// MeasureStalls spins one thread on cpu for d, reading the clock, and
// sums the gaps. Run it before the load (it takes that CPU for d); the
// thread's affinity is restored before it returns to the runtime.
func MeasureStalls(cpu int, d time.Duration) (Stalls, error) {
	type result struct {
		s   Stalls
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Locked, and unlocked only with its affinity restored: a thread
		// left pinned to another CPU ends with this goroutine instead of
		// going back to the runtime.
		goruntime.LockOSThread()
		var orig, set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &orig); err != nil {
			goruntime.UnlockOSThread()
			done <- result{err: fmt.Errorf("sched_getaffinity: %w", err)}
			return
		}
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			goruntime.UnlockOSThread() // not moved
			done <- result{err: fmt.Errorf("CPU %d: sched_setaffinity: %w", cpu, err)}
			return
		}
		s := Stalls{CPU: cpu}
		start := time.Now()
		last := start
		for {
			now := time.Now()
			if g := now.Sub(last); g > StallThreshold {
				s.Count++
				s.Lost += g
				s.Largest = max(s.Largest, g)
			}
			last = now
			if s.Span = now.Sub(start); s.Span >= d {
				break
			}
		}
		// Restored before answering: the caller may look at its threads
		// (or start pinned work) as soon as it has the answer.
		var err error
		if e := unix.SchedSetaffinity(0, &orig); e != nil {
			err = fmt.Errorf("restore the thread's affinity: %w", e)
		} else {
			goruntime.UnlockOSThread()
		}
		done <- result{s: s, err: err}
	}()
	r := <-done
	return r.s, r.err
}
