package wasmcache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

const day = 24 * time.Hour

// goModWazero is the wazero version go.mod requires.
func goModWazero(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/tetratelabs/wazero (\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod requires no wazero")
	}
	return string(m[1])
}

// TestOpenNamesTheRealVersion: a test binary's wazero calls itself "dev"
// (no build information), which every wazero version shares; its cache
// goes in a directory named by the version compiled in.
func TestOpenNamesTheRealVersion(t *testing.T) {
	want := goModWazero(t)
	named, real := wazeroVersions()
	if real != want {
		t.Fatalf("real version %q, go.mod requires %q", real, want)
	}
	if named != "dev" {
		t.Logf("wazero names itself %q in this binary", named)
	}
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filepath.Base(d.Current()), want) {
		t.Fatalf("this binary's directory %s does not name wazero %s", d.Current(), want)
	}
	// The layout is what wazero makes.
	c, err := wazero.NewCompilationCacheWithDir(d.WazeroDir())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close(context.Background())
	if st, err := os.Stat(d.inner); err != nil || !st.IsDir() {
		t.Fatalf("wazero did not make %s: %v", d.inner, err)
	}
	des, _ := os.ReadDir(root)
	if len(des) != 1 || filepath.Join(root, des[0].Name()) != d.Current() {
		t.Fatalf("root holds %v, want only %s", des, d.Current())
	}
}

func TestVersionInPath(t *testing.T) {
	for in, want := range map[string]string{
		"/root/go/pkg/mod/github.com/tetratelabs/wazero@v1.12.0/cache.go":              "v1.12.0",
		"github.com/tetratelabs/wazero@v1.12.1-0.20260101000000-abcdef123456/cache.go": "v1.12.1-0.20260101000000-abcdef123456",
		"/go/pkg/mod/github.com/tetratelabs/wazero/v2@v2.0.0/cache.go":                 "v2.0.0",
		"/src/claimsmith/vendor/github.com/tetratelabs/wazero/cache.go":                "",
		"/home/dev/src/github.com/tetratelabs/wazero/cache.go":                         "",
		"/home/dev/src/github.com/tetratelabs/wazero-fork@v1.0.0/cache.go":             "",
		`C:\Users\dev\go\pkg\mod\github.com\tetratelabs\wazero@v1.12.0\cache.go`:       "",
	} {
		if goruntime.GOOS == "windows" && strings.Contains(in, `\`) {
			want = "v1.12.0"
		}
		if got := versionInPath(in); got != want {
			t.Errorf("versionInPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// layout makes a cache directory: files of size bytes, used (atime and
// mtime) age ago.
type layout struct {
	t    *testing.T
	root string
	now  time.Time
}

func (l layout) file(rel string, size int, age time.Duration) string {
	l.t.Helper()
	p := filepath.Join(l.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Repeat([]byte{1}, size), 0o600); err != nil {
		l.t.Fatal(err)
	}
	l.age(p, age)
	return p
}

func (l layout) age(p string, age time.Duration) {
	l.t.Helper()
	when := l.now.Add(-age)
	if err := os.Chtimes(p, when, when); err != nil {
		l.t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func openTemp(t *testing.T) (*Dir, layout) {
	t.Helper()
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return d, layout{t: t, root: root, now: time.Now()}
}

// TestPruneRemovesStaleKeepsCurrent: what nobody used for MaxAge goes;
// this binary's directory, the kept engine module, recent entries and
// everything claimsmith does not own stay.
func TestPruneRemovesStaleKeepsCurrent(t *testing.T) {
	d, l := openTemp(t)
	cur := d.Current()
	rel := func(p string) string { r, _ := filepath.Rel(l.root, p); return r }
	curRel := rel(d.inner)
	engine := EnginePrefix + strings.Repeat("a", 64) + ".wasm"

	keep := []string{
		l.file(filepath.Join(curRel, "fresh"), 10, time.Hour),
		l.file(engine, 10, 30*day), // current engine: kept however old
		l.file("wazero-v1.11.0-amd64-linux/recent", 10, 2*day),
		l.file(EnginePrefix+strings.Repeat("b", 64)+".wasm", 10, 2*day),
		l.file("hydra-v2.3.0/hydra", 10, 90*day), // not claimsmith's compiled code
		l.file("wasm/wazero-v1.0.0-amd64-linux/x", 10, 90*day),
		l.file("wazero-test/wazero-dev-amd64-linux/x", 10, 90*day),
		l.file("notes.txt", 10, 90*day),
	}
	gone := []string{
		l.file(filepath.Join(curRel, "stale"), 10, 8*day),
		l.file(filepath.Join(curRel, "0123.456.tmp"), 10, 8*day), // an interrupted write
		l.file(EnginePrefix+strings.Repeat("c", 64)+".wasm", 10, 8*day),
		l.file(EnginePrefix+strings.Repeat("c", 64)+".wasm.tmp123", 10, 8*day),
		l.file("wazero-dev-amd64-linux/e1", 10, 9*day),
		l.file("wazero-v1.9.0+dev-arm64-linux/wazero-dev-arm64-linux/e1", 10, 9*day),
	}
	// A stale directory whose newest file is recent counts as used.
	l.file("wazero-v1.10.0-amd64-linux/old", 10, 30*day)
	keep = append(keep, l.file("wazero-v1.10.0-amd64-linux/new", 10, day))
	for _, p := range []string{"wazero-dev-amd64-linux", "wazero-v1.9.0+dev-arm64-linux/wazero-dev-arm64-linux", "wazero-v1.9.0+dev-arm64-linux", "wazero-v1.10.0-amd64-linux"} {
		l.age(filepath.Join(l.root, p), 9*day)
	}
	l.age(cur, 30*day)

	st := d.Prune(context.Background(), Policy{Keep: []string{engine}})
	for _, p := range keep {
		if !exists(p) {
			t.Errorf("removed %s", rel(p))
		}
	}
	for _, p := range gone {
		if exists(p) {
			t.Errorf("kept %s", rel(p))
		}
	}
	for _, p := range []string{"wazero-dev-amd64-linux", "wazero-v1.9.0+dev-arm64-linux"} {
		if exists(filepath.Join(l.root, p)) {
			t.Errorf("kept the directory %s", p)
		}
	}
	if !exists(cur) {
		t.Error("removed this binary's directory")
	}
	if st.Removed != 6 || st.FreedBytes != 60 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestPruneSizeCap: past MaxBytes, entries go least recently used first,
// other versions' before this one's; kept and recent ones never.
func TestPruneSizeCap(t *testing.T) {
	d, l := openTemp(t)
	curRel, _ := filepath.Rel(l.root, d.inner)
	engine := EnginePrefix + strings.Repeat("a", 64) + ".wasm"
	kept := l.file(engine, 300, 5*day)
	recentOther := l.file("wazero-v1.11.0-amd64-linux/r", 300, time.Minute)
	otherOld := l.file("wazero-v1.10.0-amd64-linux/o", 100, 3*day)
	l.age(filepath.Dir(otherOld), 3*day)
	otherNewer := l.file(EnginePrefix+strings.Repeat("b", 64)+".wasm", 100, 2*day)
	curOld := l.file(filepath.Join(curRel, "m1"), 100, 4*day)
	curNewer := l.file(filepath.Join(curRel, "m2"), 100, 2*day)
	curRecent := l.file(filepath.Join(curRel, "m3"), 100, time.Minute)

	// 1100 bytes, cap 800: other versions go first (200), then this
	// version's oldest (100).
	st := d.Prune(context.Background(), Policy{MaxBytes: 800, Keep: []string{engine}})
	for p, want := range map[string]bool{
		kept: true, recentOther: true, otherOld: false, otherNewer: false,
		curOld: false, curNewer: true, curRecent: true,
	} {
		if exists(p) != want {
			t.Errorf("%s exists %v, want %v", p, !want, want)
		}
	}
	if st.KeptBytes != 800 || st.Removed != 3 {
		t.Errorf("stats %+v", st)
	}
	// Nothing left that may go: over the cap is then fine.
	st = d.Prune(context.Background(), Policy{MaxBytes: 1, Keep: []string{engine}})
	if st.Removed != 1 || !exists(kept) || !exists(recentOther) || !exists(curRecent) {
		t.Errorf("second prune %+v", st)
	}
}

// TestPruneConcurrentUse: pruning everything prunable while other
// goroutines write (temp file, rename), open and read entries never makes
// a reader see a torn or missing-mid-read file.
func TestPruneConcurrentUse(t *testing.T) {
	d, _ := openTemp(t)
	if err := d.Use(); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("compiled"), 64<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Go(func() {
		for ctx.Err() == nil {
			d.Prune(ctx, Policy{MaxAge: time.Nanosecond, MaxBytes: 1, Recent: time.Nanosecond})
		}
	})
	for w := range 4 {
		wg.Go(func() {
			path := filepath.Join(d.inner, strings.Repeat(string(rune('a'+w)), 64))
			for ctx.Err() == nil {
				f, err := os.Open(path)
				if err != nil { // pruned: compile again, as wazero does
					if err := writeAtomic(path, want); err != nil && !errors.Is(err, os.ErrNotExist) {
						errs <- err
						return
					}
					continue
				}
				got := make([]byte, len(want)+1)
				n, _ := f.Read(got)
				for n < len(want) {
					m, err := f.Read(got[n:])
					if err != nil {
						break
					}
					n += m
				}
				f.Close()
				if !bytes.Equal(got[:n], want) {
					errs <- errors.New("read a torn entry")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !exists(d.Current()) {
		t.Error("pruned this binary's directory")
	}
}

// writeAtomic writes as wazero's file cache does: a temp file, renamed.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// TestPruneUnusableDir: a cache directory that cannot be read or pruned
// is counted as failures, never a panic or an error to the caller.
func TestPruneUnusableDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache")
	if err := os.WriteFile(root, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if st := d.Prune(context.Background(), Policy{}); st.Failed != 1 || st.FirstError == nil {
		t.Errorf("stats %+v", st)
	}
	if err := d.Use(); err == nil {
		t.Error("Use made a directory under a file")
	}
	// A missing directory is simply empty.
	d, _ = Open(filepath.Join(t.TempDir(), "none"))
	if st := d.Prune(context.Background(), Policy{}); st.Failed != 0 || st.Removed != 0 {
		t.Errorf("missing dir: %+v", st)
	}
}

// TestPruneUnwritableDir: entries that cannot be removed are failures;
// the rest of the cache is still pruned. (Root ignores permissions.)
func TestPruneUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may remove from a read-only directory")
	}
	d, l := openTemp(t)
	stale := l.file(EnginePrefix+"old.wasm", 10, 30*day)
	other := l.file("wazero-v1.0.0-amd64-linux/sub/x", 10, 30*day)
	l.age(filepath.Dir(other), 30*day)
	l.age(filepath.Dir(filepath.Dir(other)), 30*day)
	if err := os.Chmod(filepath.Dir(other), 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Dir(other), 0o700) })
	st := d.Prune(context.Background(), Policy{})
	if st.Failed == 0 || exists(stale) {
		t.Errorf("stats %+v; stale engine module exists %v", st, exists(stale))
	}
}

// TestUseRemakesDir: a running loader's directory removed by someone else
// is made again (wazero fails a compilation it cannot write).
func TestUseRemakesDir(t *testing.T) {
	d, _ := openTemp(t)
	if err := os.RemoveAll(d.Current()); err != nil {
		t.Fatal(err)
	}
	if err := d.Use(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d.inner)
	if err != nil || !st.IsDir() {
		t.Fatalf("%s: %v", d.inner, err)
	}
	if cst, _ := os.Stat(d.Current()); time.Since(cst.ModTime()) > time.Minute {
		t.Errorf("Use did not touch %s", d.Current())
	}
}
