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
