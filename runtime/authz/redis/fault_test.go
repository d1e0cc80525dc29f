package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authzgen"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/redistest"
)

var alice = authz.PolicyQuery{UserID: "auth0|alice", ClientID: authztest.Portal}

func fixtureStore(t *testing.T, srv *redistest.Server, opt redis.Options) *redis.Store {
	t.Helper()
	c := newClient(t, srv.Addr())
	ctx := context.Background()
	s, err := redis.New(ctx, c, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Apply(ctx, 0, &authz.ReplaceDocument{Doc: authztest.ResolutionFixture()}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreDownFailsClosed: with the default policy a login gets a clear
// ErrUnavailable, never a partial answer; the store resumes by itself.
func TestStoreDownFailsClosed(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	s := fixtureStore(t, srv, redis.Options{})
	ctx := context.Background()
	want, err := s.ResolvePolicy(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	_, err = s.ResolvePolicy(ctx, alice)
	if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "redis store") {
		t.Fatalf("store down: err = %v, want ErrUnavailable naming the redis store", err)
	}
	if _, err := s.Apply(ctx, 0, &authz.CreateGroup{ID: "x", Name: "X"}); !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("write with store down: err = %v, want ErrUnavailable", err)
	}
	srv.Restart()
	var got authz.Policy
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, err = s.ResolvePolicy(ctx, alice); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not resume after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after restart (AOF): %+v, want %+v", got, want)
	}
}

// TestStoreDownServesLastSnapshot: with last_snapshot a login is answered
// from the in-process model while it is younger than max staleness.
func TestStoreDownServesLastSnapshot(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	s := fixtureStore(t, srv, redis.Options{OnUnavailable: redis.LastSnapshot, MaxStaleness: time.Minute, RefreshInterval: 10 * time.Millisecond, Now: clock})
	ctx := context.Background()
	// Wait for the refresher to pick up the imported revision.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := s.Snapshot(ctx)
		if err == nil && m.Revision() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("snapshot not refreshed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	want, _ := s.ResolvePolicy(ctx, alice)
	srv.Kill()
	got, err := s.ResolvePolicy(ctx, alice)
	if err != nil || fmt.Sprint(got.Groups, got.Roles, got.Permissions) != fmt.Sprint(want.Groups, want.Roles, want.Permissions) {
		t.Fatalf("store down, fresh snapshot: %+v %v, want %+v", got, err, want)
	}
	now.Add(int64(2 * time.Minute))
	if _, err := s.ResolvePolicy(ctx, alice); !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("store down, snapshot older than max staleness: err = %v, want ErrUnavailable", err)
	}
}

// TestSlowStoreBoundedByLoginBudget: a frozen or paused Redis never holds a
// login longer than its context allows.
func TestSlowStoreBoundedByLoginBudget(t *testing.T) {
	for _, mode := range []string{"freeze", "client-pause", "debug-sleep"} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{})
			s := fixtureStore(t, srv, redis.Options{})
			switch mode {
			case "freeze":
				srv.Freeze()
				defer srv.Thaw()
			case "client-pause":
				srv.Pause(3 * time.Second)
			case "debug-sleep":
				srv.Sleep(3 * time.Second)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := s.ResolvePolicy(ctx, alice)
			d := time.Since(start)
			if !errors.Is(err, runtime.ErrTimeout) && !errors.Is(err, runtime.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrTimeout or ErrUnavailable", err)
			}
			// The error proves the login did not wait for Redis (paused
			// or sleeping, it answers after 3 s and the call would then
			// succeed). The limit only catches a hang on the frozen
			// server, generously, so a loaded -race run cannot miss it.
			if d > 10*time.Second {
				t.Fatalf("login waited %v with a 150ms budget", d)
			}
		})
	}
}

// TestWritersInTwoProcesses runs 100 concurrent writers, 50 in each of two
// OS processes, on one group: plain AddGroupMembers and optimistic
// read-modify-write with the expected revision. Nothing may be lost.
func TestWritersInTwoProcesses(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := fixtureStore(t, srv, redis.Options{Tag: "procs"})
	ctx := context.Background()
	rev0, _ := s.Revision(ctx)
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$", "-test.v")
			cmd.Env = append(os.Environ(), "CLAIMSMITH_WRITER_REDIS="+srv.Addr(), "CLAIMSMITH_WRITER_ID="+strconv.Itoa(p))
			outs[p], errs[p] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for p := range errs {
		if errs[p] != nil {
			t.Fatalf("writer process %d: %v\n%s", p, errs[p], outs[p])
		}
	}
	m, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, g := range m.Document().Groups {
		if g.ID == "g-eng" {
			members = g.Members
		}
	}
	var missing []string
	for p := 0; p < 2; p++ {
		for i := 0; i < 50; i++ {
			if u := writerUser(p, i); !slices.Contains(members, u) {
				missing = append(missing, u)
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("lost updates: %d missing: %q", len(missing), missing)
	}
	if rev, _ := s.Revision(ctx); rev != rev0+100 {
		t.Fatalf("revision %d after 100 writes from %d, want %d", rev, rev0, rev0+100)
	}
	// Every member is also in the login index.
	for p := 0; p < 2; p++ {
		pol, err := s.ResolvePolicy(ctx, authz.PolicyQuery{UserID: writerUser(p, 7), ClientID: authztest.Portal})
		if err != nil || !slices.Contains(pol.Groups, "Engineering") {
			t.Fatalf("writer user not resolvable: %+v %v", pol, err)
		}
	}
}

func writerUser(p, i int) string { return fmt.Sprintf("auth0|proc%d-writer%02d", p, i) }

// TestWriterProcess is the child of TestWritersInTwoProcesses.
func TestWriterProcess(t *testing.T) {
	addr := os.Getenv("CLAIMSMITH_WRITER_REDIS")
	if addr == "" {
		t.Skip("child process of TestWritersInTwoProcesses")
	}
	p, _ := strconv.Atoi(os.Getenv("CLAIMSMITH_WRITER_ID"))
	c := newClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := redis.New(ctx, c, redis.Options{Tag: "procs"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := writerUser(p, i)
			if i%2 == 0 {
				_, err := s.Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "g-eng", UserIDs: []string{u}})
				errs <- err
				return
			}
			// Optimistic: expected revision, retry on conflict.
			for {
				rev, err := s.Revision(ctx)
				if err != nil {
					errs <- err
					return
				}
				_, err = s.Apply(ctx, rev, &authz.AddGroupMembers{GroupID: "g-eng", UserIDs: []string{u}})
				if errors.Is(err, runtime.ErrConflict) {
					continue
				}
				errs <- err
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// slowBatches makes every pipeline of more than limit commands run on
// Redis and then fail with a read timeout, as a big batch did on a loaded
// machine (make test: "import: write batch: i/o timeout", after go-redis'
// own retries of the whole batch).
type slowBatches struct {
	limit int
	hits  atomic.Int64
}

func (h *slowBatches) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *slowBatches) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h *slowBatches) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil && len(cmds) > h.limit {
			h.hits.Add(1)
			return &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
		}
		return err
	}
}

// TestImportSurvivesSlowBatches: an import whose big batches time out
// (after Redis ran them) completes in smaller ones, and the store holds
// exactly the document.
func TestImportSurvivesSlowBatches(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	hook := &slowBatches{limit: 700}
	c.AddHook(hook)
	s, err := redis.New(ctx, c, redis.Options{BatchSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	doc := authzgen.Generate(authzgen.BenchSpec(3000))
	if _, err := s.Import(ctx, 0, doc, nil); err != nil {
		t.Fatalf("import with slow big batches: %v", err)
	}
	if hook.hits.Load() == 0 {
		t.Fatal("no batch was over the limit: the test tested nothing")
	}
	m, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(authz.NewModel(doc, 1).Document())
	got, _ := json.Marshal(m.Document())
	if string(got) != string(want) {
		t.Fatalf("the store holds another document than the one imported (%d vs %d bytes)", len(got), len(want))
	}
}
