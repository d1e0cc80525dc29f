package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/admin/admintest"
	authzfile "github.com/claimsmith/claimsmith/runtime/authz/file"
)

func TestConformance(t *testing.T) {
	admintest.Run(t, func(t *testing.T) admintest.Backend {
		dir := t.TempDir()
		return admintest.Backend{
			Keys: func(t *testing.T) admin.KeyStore {
				s, err := OpenKeyStore(dir, nil) // one store per view: flock serialises them
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			Audit: func(t *testing.T, now func() time.Time) admin.AuditLog {
				l, err := OpenAuditLog(dir, now)
				if err != nil {
					t.Fatal(err)
				}
				return l
			},
			Store: func(t *testing.T) admin.Store {
				s, err := authzfile.Open(context.Background(), filepath.Join(dir, "authz"), authzfile.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			},
		}
	})
}

// TestKeyFileHoldsNoSecret: the key file is private and holds digests only.
func TestKeyFileHoldsNoSecret(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenKeyStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := s.Create(context.Background(), "deploy bot", []string{admin.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, keysFile))
	if strings.Contains(string(b), secret) || strings.Contains(string(b), secret[len(secret)-20:]) {
		t.Fatal("the secret is stored in clear")
	}
	if st, _ := os.Stat(filepath.Join(dir, keysFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
}

func TestFileKeyStoreRejectsDamagedFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, keysFile), []byte(`{"keys":[{"id":"x","hash":"short"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyStore(dir, nil); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "key #0") {
		t.Fatalf("want an error naming the key, got %v", err)
	}
}

func TestFileAuditLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l, err := OpenAuditLog(dir, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	if p, err := l.List(ctx, admin.AuditQuery{PerPage: 10}); err != nil || len(p.Records) != 0 || p.Total != 0 {
		t.Fatalf("empty log: %+v %v", p, err)
	}
	for i := range 7 {
		who := "alice"
		if i%2 == 1 {
			who = "bob"
		}
		r, err := l.Append(ctx, admin.Record{KeyName: who, Action: fmt.Sprintf("a%d", i), EntityID: "g1", RevisionBefore: uint64(i), RevisionAfter: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i+1) || !r.Time.Equal(clock) {
			t.Fatalf("record %+v", r)
		}
	}
	p, err := l.List(ctx, admin.AuditQuery{Page: 0, PerPage: 3})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 7 || len(p.Records) != 3 || p.Records[0].Seq != 7 || p.Records[2].Seq != 5 {
		t.Fatalf("page 0: %+v", p)
	}
	p, _ = l.List(ctx, admin.AuditQuery{Page: 2, PerPage: 3})
	if len(p.Records) != 1 || p.Records[0].Seq != 1 || p.Records[0].Action != "a0" {
		t.Fatalf("page 2: %+v", p)
	}
	p, _ = l.List(ctx, admin.AuditQuery{Page: 1, PerPage: 2, KeyName: "bob"})
	if p.Total != 3 || len(p.Records) != 1 || p.Records[0].Seq != 2 {
		t.Fatalf("bob page 1: %+v", p)
	}
	if _, err := l.List(ctx, admin.AuditQuery{Page: -1, PerPage: 2}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad page: %v", err)
	}

	// A crash mid-append leaves a torn line: it is not a record, and the next
	// append starts cleanly after it.
	f, _ := os.OpenFile(filepath.Join(dir, auditFile), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"seq":8,"key_na`)
	_ = f.Close()
	l2, _ := OpenAuditLog(dir, nil)
	if p, _ := l2.List(ctx, admin.AuditQuery{PerPage: 100}); p.Total != 7 {
		t.Fatalf("torn tail counted: %d", p.Total)
	}
	r, err := l2.Append(ctx, admin.Record{KeyName: "carol", Action: "after-crash"})
	if err != nil || r.Seq != 8 {
		t.Fatalf("append after crash: %+v %v", r, err)
	}
	for _, lg := range []*AuditLog{l, l2} { // the old reader catches up too
		p, err = lg.List(ctx, admin.AuditQuery{PerPage: 100})
		if err != nil || p.Total != 8 || p.Records[0].Action != "after-crash" || p.Records[1].Seq != 7 {
			t.Fatalf("after crash: %+v %v", p, err)
		}
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	s, _ := OpenKeyStore(b.TempDir(), nil)
	var secret string
	for i := range 10 {
		_, sec, err := s.Create(ctx, fmt.Sprint("k", i), []string{admin.ScopeRead})
		if err != nil {
			b.Fatal(err)
		}
		secret = sec
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}
