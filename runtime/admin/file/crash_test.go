package file_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	"github.com/claimsmith/claimsmith/runtime/authz"
	authzfile "github.com/claimsmith/claimsmith/runtime/authz/file"
)

// The crash tests re-run this test binary as a child that makes one admin
// write on a data dir and kills itself with SIGKILL at a chosen point of
// it; the parent then opens the same dir as a restarted server would.
// The kill is placed by wrapping the store and the audit log, so the point
// is exact, not a matter of timing.
const crashEnv = "CLAIMSMITH_ADMIN_CRASH_CHILD"

// killingStore kills the process around its commit.
type killingStore struct {
	*authzfile.Store
	before bool // die before committing, else right after
}

func (s killingStore) Apply(ctx context.Context, expected uint64, ops ...authz.Op) (uint64, error) {
	if s.before {
		die()
	}
	rev, err := s.Store.Apply(ctx, expected, ops...)
	if err == nil {
		die()
	}
	return rev, err
}

// killingAudit kills the process once a record is appended (the intent
// of the write is then still pending).
type killingAudit struct{ *adminfile.AuditLog }

func (a killingAudit) Append(ctx context.Context, r admin.Record) (admin.Record, error) {
	out, err := a.AuditLog.Append(ctx, r)
	if err == nil {
		die()
	}
	return out, err
}

func die() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; wait for it
}

// openDir opens the store and audit log of a data dir as setup does.
func openDir(t testing.TB, dir string) (*authzfile.Store, *adminfile.AuditLog) {
	st, err := authzfile.Open(context.Background(), dir, authzfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	audit, err := adminfile.OpenAuditLog(filepath.Join(dir, adminfile.Dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, audit
}

func createGroup(id string) admin.Change {
	return admin.Change{Action: "group.create", Entity: "group", ID: id,
		Ops: []authz.Op{&authz.CreateGroup{ID: id, Name: "Group " + id}}}
}

func TestCrashChild(t *testing.T) {
	point := os.Getenv(crashEnv)
	if point == "" {
		t.Skip("only run as the child of the crash tests")
	}
	dir := os.Getenv(crashEnv + "_DIR")
	st, audit := openDir(t, dir)
	cfg := admin.ServiceConfig{Store: st, Audit: audit}
	switch point {
	case "before-commit", "after-commit":
		cfg.Store = killingStore{Store: st, before: point == "before-commit"}
	case "after-audit":
		cfg.Audit = killingAudit{AuditLog: audit}
	}
	svc, err := admin.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Apply(context.Background(), admin.Caller{KeyID: "k1", KeyName: "ops", RequestID: "crash"}, createGroup("crashed"), admin.IfMatch{})
	t.Fatalf("the child survived its write: %v", err)
}

// Regression (issue 14 item 10): a crash between the commit and the audit
// append left a committed write with no audit record. The service writes
// the record ahead as an intent and reconciles it at the next start: every
// committed write ends up audited exactly once, and a write that never
// committed is never audited.
func TestCrashBetweenCommitAndAudit(t *testing.T) {
	for _, c := range []struct {
		point     string
		committed bool
	}{
		{"before-commit", false},
		{"after-commit", true},
		{"after-audit", true},
	} {
		t.Run(c.point, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			caller := admin.Caller{KeyID: "k1", KeyName: "ops"}
			func() {
				st, audit := openDir(t, dir)
				defer st.Close()
				svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: audit})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := svc.Apply(ctx, caller, createGroup("seed"), admin.IfMatch{}); err != nil {
					t.Fatal(err)
				}
			}()

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashEnv+"="+c.point, crashEnv+"_DIR="+dir)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
			}

			// The restart: a new service on the same dir, which then writes.
			st, audit := openDir(t, dir)
			defer st.Close()
			svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: audit})
			if err != nil {
				t.Fatal(err)
			}
			// At start-up, before any write, the log is made complete.
			if err := svc.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			if p, err := audit.List(ctx, admin.AuditQuery{PerPage: 10}); err != nil || p.Total != map[bool]int{false: 1, true: 2}[c.committed] {
				t.Fatalf("after Reconcile: %d records (%v)", p.Total, err)
			} else if c.point == "after-commit" && !p.Records[0].Recovered {
				t.Fatalf("the reconciled record is not marked recovered: %+v", p.Records[0])
			}
			if pending, err := audit.PendingIntents(ctx); err != nil || len(pending) != 0 {
				t.Fatalf("intents left after Reconcile: %v %v", pending, err)
			}
			if _, err := svc.Apply(ctx, caller, createGroup("after"), admin.IfMatch{}); err != nil {
				t.Fatal(err)
			}
			rev, err := st.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := uint64(2)
			if c.committed {
				want = 3
			}
			if rev != want {
				t.Fatalf("store at revision %d, want %d", rev, want)
			}
			page, err := audit.List(ctx, admin.AuditQuery{PerPage: 100})
			if err != nil {
				t.Fatal(err)
			}
			// One record per committed revision, in order, none twice.
			if len(page.Records) != int(rev) {
				t.Fatalf("%d audit records for %d committed writes: %+v", len(page.Records), rev, page.Records)
			}
			for i, r := range page.Records {
				if r.RevisionAfter != rev-uint64(i) || r.RevisionBefore != r.RevisionAfter-1 {
					t.Fatalf("record %d: revisions %d→%d, want %d→%d", i, r.RevisionBefore, r.RevisionAfter, rev-uint64(i)-1, rev-uint64(i))
				}
			}
			if c.committed {
				crashed := page.Records[1]
				if crashed.EntityID != "crashed" || crashed.Action != "group.create" || crashed.KeyName != "ops" || crashed.RequestID != "crash" {
					t.Fatalf("the crashed write's record: %+v", crashed)
				}
			}
		})
	}
}

// plainAudit hides the audit log's intent side: the service then appends
// after the commit only, as before write-ahead intents.
type plainAudit struct{ admin.AuditLog }

// BenchmarkFileWriteAudited is the cost of one audited write on the file
// store, with the write-ahead intent and without it.
func BenchmarkFileWriteAudited(b *testing.B) {
	for _, mode := range []string{"intent", "no-intent"} {
		b.Run(mode, func(b *testing.B) {
			st, audit := openDir(b, b.TempDir())
			defer st.Close()
			cfg := admin.ServiceConfig{Store: st, Audit: audit}
			if mode == "no-intent" {
				cfg.Audit = plainAudit{audit}
			}
			svc, err := admin.NewService(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := svc.Apply(ctx, admin.Caller{KeyID: "k"}, createGroup("g"), admin.IfMatch{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				ch := admin.Change{Action: "group.members.add", Entity: "group", ID: "g",
					Ops: []authz.Op{&authz.AddGroupMembers{GroupID: "g", UserIDs: []string{fmt.Sprint("auth0|", i)}}}}
				if _, err := svc.Apply(ctx, admin.Caller{KeyID: "k"}, ch, admin.IfMatch{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
