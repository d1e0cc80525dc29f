package file_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
)

func open(t testing.TB, dir string) *file.Store {
	t.Helper()
	s, err := file.Open(context.Background(), dir, file.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	authztest.Run(t, func(t *testing.T) authz.Store { return open(t, t.TempDir()) })
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	d := authztest.ResolutionFixture()
	d.Claimsmith = &authz.Section{Applications: []authz.Application{{ClientID: authztest.Portal, Name: "Portal"}}}
	rev := authztest.Apply(t, s, &authz.ReplaceDocument{Doc: d})
	if _, err := s.PatchProfile(ctx, "auth0|alice", map[string]any{"plan": "gold"}, nil); err != nil {
		t.Fatal(err)
	}
	want, err := authztest.ExportFull(ctx, s, true)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := open(t, dir)
	got, err := authztest.ExportFull(ctx, s2, true)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := s2.Revision(ctx); r != rev {
		t.Fatalf("reopened at revision %d, committed %d", r, rev)
	}
	if string(got) != string(want) {
		t.Fatalf("reopened store differs:\n%s\nwant\n%s", got, want)
	}
}

// TestCrashBetweenWriteAndRename leaves exactly what a writer killed after
// writing the next revision but before renaming HEAD leaves (new document,
// half-written temp files, an unnamed profile generation) and checks the store
// opens at the last committed revision and removes the debris.
func TestCrashBetweenWriteAndRename(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	rev := authztest.Apply(t, s, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()})
	want, _ := authztest.ExportFull(ctx, s, true)

	next := fmt.Sprintf("authz-%d.json", rev+1)
	debris := map[string]string{
		next:          `{"groups":[{"_id":"half","name":"Half written"}]`,
		next + ".tmp": `{"gro`,
		"HEAD.tmp":    fmt.Sprintf(`{"format":1,"revision":%d,"document":%q,"profiles":"profiles-%d"}`, rev+1, next, rev+1),
		fmt.Sprintf("profiles-%d/ab/x.json", rev+1): `{"user_id":"ghost"}`,
	}
	for name, content := range debris {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2 := open(t, dir)
	if r, _ := s2.Revision(ctx); r != rev {
		t.Fatalf("opened at revision %d, last commit %d", r, rev)
	}
	if got, _ := authztest.ExportFull(ctx, s2, true); string(got) != string(want) {
		t.Fatalf("state after crash differs:\n%s", got)
	}
	for name := range debris {
		top := strings.Split(name, "/")[0]
		if _, err := os.Stat(filepath.Join(dir, top)); err == nil {
			t.Errorf("leftover %s not removed", top)
		}
	}
	// And the store keeps working, reusing the interrupted revision number.
	if r := authztest.Apply(t, s2, &authz.CreateGroup{ID: "g-after", Name: "After"}); r != rev+1 {
		t.Fatalf("next commit got revision %d, want %d", r, rev+1)
	}
}

// TestHelperProcess is not a test: the tests below re-execute the test binary
// to run it as a separate writer process.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("AUTHZ_FILE_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	opt := file.Options{}
	if n, err := strconv.ParseInt(os.Getenv("AUTHZ_FILE_CHECKPOINT"), 10, 64); err == nil {
		opt.CheckpointBytes = n
	}
	if d := os.Getenv("AUTHZ_FILE_DURABILITY"); d != "" {
		opt.Durability = file.Durability(d)
		opt.CommitWindow, _ = time.ParseDuration(os.Getenv("AUTHZ_FILE_WINDOW"))
	}
	s, err := file.Open(ctx, os.Getenv("AUTHZ_FILE_DIR"), opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	switch mode {
	case "writer": // commit forever, report each commit
		for i := 0; ; i++ {
			rev, err := s.Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "g-big", UserIDs: []string{fmt.Sprintf("w-%d-%06d", os.Getpid(), i)}})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(4)
			}
			fmt.Printf("committed %d\n", rev)
		}
	case "adders": // n concurrent writers, half optimistic; profiles are the parent's
		n, _ := strconv.Atoi(os.Getenv("AUTHZ_FILE_N"))
		if err := addConcurrently(ctx, s, "child", n, false); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
		if _, err := s.PatchProfile(ctx, "auth0|hot", map[string]any{"child": true}, nil); !errors.Is(err, file.ErrNotOwner) {
			fmt.Fprintln(os.Stderr, "profile patch of a non-owner process:", err)
			os.Exit(6)
		}
		os.Exit(0)
	case "patcher": // crash test: patch forever, print each acknowledged patch
		patchUntilKilled(ctx, s)
	}
}

func helper(t *testing.T, mode, dir string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "AUTHZ_FILE_HELPER="+mode, "AUTHZ_FILE_DIR="+dir)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = os.Stderr
	return cmd
}

func addConcurrently(ctx context.Context, s authz.Store, prefix string, n int, profiles bool) error {
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			u := fmt.Sprintf("%s-%03d", prefix, i)
			if i%2 == 0 {
				errs <- authztest.OptimisticAddMember(ctx, s, "g-hot", u)
			} else {
				_, err := s.Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "g-hot", UserIDs: []string{u}})
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			if profiles {
				_, err := s.PatchProfile(ctx, "auth0|hot", map[string]any{fmt.Sprintf("%s-%03d", prefix, i): true}, nil)
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestTwoProcessesNoLostUpdate runs 30 writers in this process and 30 in a
// helper process on one group at once (half read-modify-write with the
// expected revision, half plain adds) and checks every member arrived. The
// parent owns the profiles: its concurrent patches all arrive, and the
// helper's profile patch is refused (ErrNotOwner), never silently lost.
func TestTwoProcessesNoLostUpdate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	authztest.Apply(t, s, &authz.CreateGroup{ID: "g-hot", Name: "Hot"})
	const n = 30
	cmd := helper(t, "adders", dir, fmt.Sprintf("AUTHZ_FILE_N=%d", n))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := addConcurrently(ctx, s, "parent", n, true); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Snapshot(ctx)
	var members []string
	for _, g := range m.Document().Groups {
		if g.ID == "g-hot" {
			members = g.Members
		}
	}
	var missing []string
	for i := 0; i < n; i++ {
		for _, p := range []string{"parent", "child"} {
			if u := fmt.Sprintf("%s-%03d", p, i); !slices.Contains(members, u) {
				missing = append(missing, u)
			}
		}
	}
	if len(missing) > 0 || len(members) != 2*n {
		t.Fatalf("lost updates across processes: %d members, want %d, missing %q", len(members), 2*n, missing)
	}
	if wantRev := uint64(1 + 2*n); m.Revision() != wantRev {
		t.Fatalf("revision %d, want %d (one per write)", m.Revision(), wantRev)
	}
	p, err := s.Profile(ctx, "auth0|hot")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.AppMetadata) != n || p.AppMetadata["child"] != nil {
		t.Fatalf("profile patches: %d keys, want the parent's %d (%v)", len(p.AppMetadata), n, p.AppMetadata)
	}
}

// TestKilledWriterProcess kills a process that commits in a loop at several
// moments (SIGKILL: no clean-up runs) and checks the store opens at a
// consistent committed state: at least every revision the writer reported,
// with exactly one member per revision.
func TestKilledWriterProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	// A large document makes each commit take long enough to be interrupted.
	members := make([]string, 20000)
	for i := range members {
		members[i] = fmt.Sprintf("auth0|seed-user-%06d", i)
	}
	base := authztest.Apply(t, s, &authz.CreateGroup{ID: "g-big", Name: "Big"}, &authz.AddGroupMembers{GroupID: "g-big", UserIDs: members})
	s.Close()
	for round, delay := range []time.Duration{0, 3 * time.Millisecond, 7 * time.Millisecond, 13 * time.Millisecond} {
		cmd := helper(t, "writer", dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var reported uint64
		for lines := 0; lines < 3 && sc.Scan(); lines++ {
			f := strings.Fields(sc.Text())
			reported, _ = strconv.ParseUint(f[len(f)-1], 10, 64)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			reported, _ = strconv.ParseUint(f[len(f)-1], 10, 64)
		}
		_ = cmd.Wait()
		if reported == 0 {
			t.Fatalf("round %d: writer reported no commit", round)
		}

		var leftovers []string
		if ents, err := os.ReadDir(dir); err == nil {
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".tmp") || strings.HasPrefix(e.Name(), "authz-") {
					leftovers = append(leftovers, e.Name())
				}
			}
		}
		t.Logf("round %d: killed after reported revision %d; files before reopen: %q", round, reported, leftovers)
		s := open(t, dir)
		rev, _ := s.Revision(ctx)
		if rev < reported {
			t.Fatalf("round %d: store at revision %d, but the writer committed %d", round, rev, reported)
		}
		m, _ := s.Snapshot(ctx)
		got := len(m.Document().Groups[0].Members)
		if want := len(members) + int(rev-base); got != want {
			t.Fatalf("round %d: revision %d has %d members, want %d", round, rev, got, want)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Fatalf("round %d: leftover %s after open", round, e.Name())
			}
		}
		base = rev
		// Continue from here in the next round; members keep counting up.
		members = m.Document().Groups[0].Members
		s.Close()
	}
}

func TestRefreshSeesOtherStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	a, err := file.Open(ctx, dir, file.Options{Now: clock, RefreshInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := open(t, dir)
	authztest.Apply(t, b, &authz.CreateGroup{ID: "g1", Name: "One"}, &authz.AddGroupMembers{GroupID: "g1", UserIDs: []string{"u"}})
	q := authz.PolicyQuery{UserID: "u", ClientID: "c"}
	if p, _ := a.ResolvePolicy(ctx, q); len(p.Groups) != 0 {
		t.Fatalf("read before the refresh interval should serve the loaded model, got %+v", p)
	}
	now = now.Add(1500 * time.Millisecond)
	if p, _ := a.ResolvePolicy(ctx, q); !slices.Equal(p.Groups, []string{"One"}) {
		t.Fatalf("after the refresh interval the other process's commit must be visible, got %+v", p)
	}
	// A write through a adopts b's commit first: no conflict, nothing lost.
	authztest.Apply(t, b, &authz.CreateGroup{ID: "g2", Name: "Two"})
	authztest.Apply(t, a, &authz.AddGroupMembers{GroupID: "g2", UserIDs: []string{"u"}})
	if p, _ := a.ResolvePolicy(ctx, q); !slices.Equal(p.Groups, []string{"One", "Two"}) {
		t.Fatalf("got %+v", p)
	}
}

func TestOpenRejectsDamagedHead(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "HEAD"), []byte(`{"format":1,"revision":3,"document":"authz-3.json","profiles":"profiles-0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := file.Open(context.Background(), dir, file.Options{})
	if err == nil || !strings.Contains(err.Error(), "authz-3.json") || !strings.Contains(err.Error(), "revision 3") {
		t.Fatalf("missing committed document must fail clearly, got %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "HEAD"), []byte(`{"format":1,"revision":3,"document":"../x","profiles":"profiles-0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := file.Open(context.Background(), dir, file.Options{}); err == nil {
		t.Fatal("a HEAD pointing outside the directory must be refused")
	}
}

func TestUnchangedPatchWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	patch := map[string]any{"authorization": map[string]any{"groups": []any{"A"}}, "n": 1}
	if _, err := s.PatchProfile(ctx, "auth0|alice", patch, nil); err != nil {
		t.Fatal(err)
	}
	before := s.IOStats()
	p, err := s.PatchProfile(ctx, "auth0|alice", patch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after := s.IOStats(); after != before {
		t.Fatalf("an unchanged patch did I/O: %+v → %+v", before, after)
	}
	if p.AppMetadata["n"] == nil {
		t.Fatalf("unchanged patch must still return the profile: %+v", p)
	}
}
