package js

import (
	"errors"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestHostileScripts: the WebAssembly rules' hostile matrix, for
// JavaScript. Each script is answered with a rule error (the pipeline then
// applies on_error: deny by default, so the login fails closed) within
// its timeout, the failed instance is replaced, a well-behaved rule on the
// same engine keeps working, and the host heap is back where it was.
func TestHostileScripts(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{Logger: testLogger(t), MaxAbandoned: 100})
	good := loadJS(t, e, runtime.ModuleSpec{Name: "good", Path: filepath.Join("testdata", "hostile", "good.js"), Timeout: 30 * time.Second})
	var before goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	const timeout = time.Second
	for _, tc := range []struct {
		file   string
		target error
		want   string
	}{
		{"loop", runtime.ErrTimeout, "did not return within 1s"},
		{"recursion", nil, "RangeError: Maximum call stack size exceeded"},
		{"string-bomb", nil, ""},
		{"array-bomb", nil, ""},
		{"arraybuffer-bomb", nil, ""},
		{"pending", nil, "promise never settled"},
		{"throw", nil, "Error: rule throws on purpose"},
		// Refused at the output cap, or at the timeout on a slow machine
		// (the 2 MiB claim is serialised first).
		{"huge-output", nil, ""},
		{"rules-no-callback", nil, "without calling its callback"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := loadJS(t, e, runtime.ModuleSpec{Name: tc.file, Path: filepath.Join("testdata", "hostile", tc.file+".js"), Timeout: timeout, MemoryBytes: 64 << 20})
			start := time.Now()
			_, err := run(t, r, baseEvent())
			elapsed := time.Since(start)
			var re *runtime.RuleError
			if !errors.As(err, &re) || re.Rule != tc.file {
				t.Fatalf("error %v (%T): want a RuleError naming %q", err, err, tc.file)
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("error %v does not match %v", err, tc.target)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			msg := err.Error()
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			t.Logf("%s after %v: %s", tc.file, elapsed.Round(time.Millisecond), msg)
			// Generous: an unstopped script never answers at all.
			if elapsed > timeout+10*time.Second {
				t.Errorf("answered after %v", elapsed)
			}
			out, err := run(t, good, baseEvent())
			if err != nil {
				t.Fatalf("a good rule on the same engine failed afterwards: %v", err)
			}
			if v, _ := out.IDToken.Claims.Get("https://example.com/ok"); v != "auth0|alice" {
				t.Fatalf("good rule claim = %v", v)
			}
		})
	}
	// The bombs' memory lived in their (discarded) instances.
	var after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("host heap after the matrix: %+d MiB", grew>>20)
	if grew > 256<<20 {
		t.Errorf("host heap grew by %d MiB", grew>>20)
	}
}
