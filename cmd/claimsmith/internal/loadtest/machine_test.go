package loadtest

import (
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPinToCPU: after PinToCPU every thread of the process may run only on
// the chosen CPU (threads started later inherit it); the test restores the
// process's affinity afterwards.
func TestPinToCPU(t *testing.T) {
	if err := PinToCPU(goruntime.NumCPU()); err == nil {
		t.Fatal("a CPU past the last one was accepted")
	}
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Skipf("sched_getaffinity: %v", err)
	}
	procs := goruntime.GOMAXPROCS(0)
	cpu := -1
	for i := goruntime.NumCPU() - 1; i >= 0; i-- {
		if orig.IsSet(i) {
			cpu = i
			break
		}
	}
	if cpu < 0 {
		t.Skip("no CPU in this process's affinity set")
	}
	defer func() {
		goruntime.GOMAXPROCS(procs)
		forEachThread(t, func(tid int) { _ = unix.SchedSetaffinity(tid, &orig) })
	}()
	if err := PinToCPU(cpu); err != nil {
		t.Fatal(err)
	}
	if goruntime.GOMAXPROCS(0) != 1 {
		t.Errorf("GOMAXPROCS = %d after pinning, want 1", goruntime.GOMAXPROCS(0))
	}
	// A goroutine locked to a new thread: the thread must inherit the pin.
	done := make(chan struct{})
	go func() {
		goruntime.LockOSThread()
		<-done
	}()
	defer close(done)
	forEachThread(t, func(tid int) {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			return // the thread ended meanwhile
		}
		if set.Count() != 1 || !set.IsSet(cpu) {
			t.Errorf("thread %d may run on %d CPUs, want only CPU %d", tid, set.Count(), cpu)
		}
	})
}

func forEachThread(t *testing.T, f func(tid int)) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tasks {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			f(tid)
		}
	}
}

func TestDescribeMachineAndFsync(t *testing.T) {
	m := DescribeMachine(-1)
	if m.CPUs < 1 || m.CPUModel == "" || !strings.Contains(m.String(), "not pinned") {
		t.Fatalf("machine: %+v", m)
	}
	d, err := FsyncLatency(t.TempDir(), 3)
	if err != nil || d <= 0 {
		t.Fatalf("fsync latency %v, %v", d, err)
	}
	if _, err := FsyncLatency("/nonexistent-dir-for-test", 1); err == nil {
		t.Fatal("a missing dir measured")
	}
}

// TestMachineBusy: a load average of half the CPUs or more before the run
// marks the machine busy (its numbers are not a quiet-machine measurement).
func TestMachineBusy(t *testing.T) {
	for _, c := range []struct {
		load string
		cpus int
		busy bool
	}{{"0.10 0.20 0.30", 2, false}, {"0.99 5 5", 2, false}, {"1.00 0 0", 2, true}, {"17.2 16 15", 2, true}, {"", 2, false}, {"x", 2, false}, {"3.9 1 1", 8, false}} {
		if got := (Machine{Load: c.load, CPUs: c.cpus}).Busy(); got != c.busy {
			t.Errorf("load %q on %d CPUs: busy %v, want %v", c.load, c.cpus, got, c.busy)
		}
	}
}

// TestMeasureStalls: the measurement spans what it was asked, its parts
// add up, and its thread goes back to the runtime with its affinity
// restored: afterwards no thread is pinned to the measured CPU alone
// (unless one was before; other tests of this package pin threads too).
func TestMeasureStalls(t *testing.T) {
	pinnedTo := func() map[unix.CPUSet]bool {
		seen := map[unix.CPUSet]bool{}
		forEachThread(t, func(tid int) {
			var got unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &got); err == nil {
				seen[got] = true
			}
		})
		return seen
	}
	var mine unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		t.Skipf("sched_getaffinity: %v", err)
	}
	before := pinnedTo()
	cpu := -1
	var only unix.CPUSet
	for i := range goruntime.NumCPU() {
		var s unix.CPUSet
		s.Set(i)
		if mine.IsSet(i) && !before[s] {
			cpu, only = i, s
			break
		}
	}
	if cpu < 0 {
		t.Skip("every CPU of this thread has a thread pinned to it alone already")
	}
	s, err := MeasureStalls(cpu, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU != cpu || s.Span < 50*time.Millisecond || s.Lost > s.Span || s.Largest > s.Lost || (s.Count == 0) != (s.Lost == 0) {
		t.Fatalf("inconsistent measurement: %+v", s)
	}
	if !strings.Contains(s.String(), "CPU "+strconv.Itoa(cpu)+" lost ") {
		t.Fatalf("String() = %q", s.String())
	}
	if pinnedTo()[only] {
		t.Errorf("a thread is left pinned to CPU %d alone after the measurement", cpu)
	}
}
