package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes("write, read,export,read")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "read:authz write:authz export" {
		t.Fatalf("got %v", got)
	}
	if got, _ := ParseScopes("all"); len(got) != 4 {
		t.Fatalf("all: %v", got)
	}
	for _, bad := range []string{"", " , ", "admin", "read:groups"} {
		_, err := ParseScopes(bad)
		var ve *runtime.ValidationError
		if !errors.As(err, &ve) || ve.Field != "scopes" {
			t.Errorf("%q: want a scopes validation error, got %v", bad, err)
		}
	}
}

func TestFileKeyStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	server, err := OpenFileKeyStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := OpenFileKeyStore(dir, nil) // a second process's view
	if err != nil {
		t.Fatal(err)
	}
	k, secret, err := cli.Create(ctx, "deploy bot", []string{ScopeWrite, ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "csk_"+k.ID+"_") || len(secret) < 50 {
		t.Fatalf("secret %q", secret)
	}
	b, _ := os.ReadFile(filepath.Join(dir, keysFile))
	if strings.Contains(string(b), secret) || strings.Contains(string(b), secret[len(secret)-20:]) {
		t.Fatal("the secret is stored in clear")
	}
	if st, _ := os.Stat(filepath.Join(dir, keysFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	got, err := server.Authenticate(ctx, secret)
	if err != nil {
		t.Fatalf("server does not see the key the CLI created: %v", err)
	}
	if got.Name != "deploy bot" || !got.Has(ScopeRead) || !got.Has(ScopeWrite) || got.Has(ScopeImport) {
		t.Fatalf("key %+v", got)
	}
	for _, bad := range []string{"", "csk_", secret + "x", secret[:len(secret)-1]} {
		if _, err := server.Authenticate(ctx, bad); !errors.Is(err, runtime.ErrUnauthenticated) {
			t.Errorf("%q: want ErrUnauthenticated, got %v", bad, err)
		}
	}
	if _, _, err := server.Create(ctx, "deploy bot", []string{ScopeRead}); !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, _, err := server.Create(ctx, " padded", []string{ScopeRead}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	if _, _, err := server.Create(ctx, "x", nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("no scopes: %v", err)
	}
	if _, _, err := server.Create(ctx, "x", []string{"root"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad scope: %v", err)
	}
	k2, s2, err := server.Create(ctx, "exporter", []string{ScopeExport})
	if err != nil {
		t.Fatal(err)
	}
	list, err := cli.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != k.ID || list[1].ID != k2.ID {
		t.Fatalf("list %v %v", list, err)
	}
	if err := cli.Revoke(ctx, "deploy bot"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(ctx, secret); !errors.Is(err, runtime.ErrUnauthenticated) {
		t.Fatalf("revoked key still works: %v", err)
	}
	if _, err := server.Authenticate(ctx, s2); err != nil {
		t.Fatalf("other key: %v", err)
	}
	if err := cli.Revoke(ctx, "deploy bot"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
}

func TestFileKeyStoreConcurrentCreates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenFileKeyStore(dir, nil) // one store per writer: flock serialises them
			if err != nil {
				t.Error(err)
				return
			}
			if _, _, err := s.Create(ctx, fmt.Sprintf("k%d", i), []string{ScopeRead}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, _ := OpenFileKeyStore(dir, nil)
	list, _ := s.List(ctx)
	if len(list) != 20 {
		t.Fatalf("lost updates: %d keys", len(list))
	}
}

func TestFileKeyStoreRejectsDamagedFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, keysFile), []byte(`{"keys":[{"id":"x","hash":"short"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileKeyStore(dir, nil); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "key #0") {
		t.Fatalf("want an error naming the key, got %v", err)
	}
}

func TestFileAuditLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l, err := OpenFileAuditLog(dir, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	if p, err := l.List(ctx, AuditQuery{PerPage: 10}); err != nil || len(p.Records) != 0 || p.Total != 0 {
		t.Fatalf("empty log: %+v %v", p, err)
	}
	for i := range 7 {
		who := "alice"
		if i%2 == 1 {
			who = "bob"
		}
		r, err := l.Append(ctx, Record{KeyName: who, Action: fmt.Sprintf("a%d", i), EntityID: "g1", RevisionBefore: uint64(i), RevisionAfter: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i+1) || !r.Time.Equal(clock) {
			t.Fatalf("record %+v", r)
		}
	}
	p, err := l.List(ctx, AuditQuery{Page: 0, PerPage: 3})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 7 || len(p.Records) != 3 || p.Records[0].Seq != 7 || p.Records[2].Seq != 5 {
		t.Fatalf("page 0: %+v", p)
	}
	p, _ = l.List(ctx, AuditQuery{Page: 2, PerPage: 3})
	if len(p.Records) != 1 || p.Records[0].Seq != 1 || p.Records[0].Action != "a0" {
		t.Fatalf("page 2: %+v", p)
	}
	p, _ = l.List(ctx, AuditQuery{Page: 1, PerPage: 2, KeyName: "bob"})
	if p.Total != 3 || len(p.Records) != 1 || p.Records[0].Seq != 2 {
		t.Fatalf("bob page 1: %+v", p)
	}
	if _, err := l.List(ctx, AuditQuery{Page: -1, PerPage: 2}); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad page: %v", err)
	}

	// A crash mid-append leaves a torn line: it is not a record, and the next
	// append starts cleanly after it.
	f, _ := os.OpenFile(filepath.Join(dir, auditFile), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"seq":8,"key_na`)
	_ = f.Close()
	l2, _ := OpenFileAuditLog(dir, nil)
	if p, _ := l2.List(ctx, AuditQuery{PerPage: 100}); p.Total != 7 {
		t.Fatalf("torn tail counted: %d", p.Total)
	}
	r, err := l2.Append(ctx, Record{KeyName: "carol", Action: "after-crash"})
	if err != nil || r.Seq != 8 {
		t.Fatalf("append after crash: %+v %v", r, err)
	}
	for _, lg := range []*FileAuditLog{l, l2} { // the old reader catches up too
		p, err = lg.List(ctx, AuditQuery{PerPage: 100})
		if err != nil || p.Total != 8 || p.Records[0].Action != "after-crash" || p.Records[1].Seq != 7 {
			t.Fatalf("after crash: %+v %v", p, err)
		}
	}
}

func TestFileAuditLogConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var wg sync.WaitGroup
	for w := range 4 {
		l, err := OpenFileAuditLog(dir, nil) // separate instances, as separate processes
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := l.Append(ctx, Record{KeyName: fmt.Sprint(w), Action: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l, _ := OpenFileAuditLog(dir, nil)
	p, err := l.List(ctx, AuditQuery{PerPage: 1000})
	if err != nil || p.Total != 100 {
		t.Fatalf("%d records, %v", p.Total, err)
	}
	for i, r := range p.Records {
		if r.Seq != uint64(100-i) {
			t.Fatalf("record %d has seq %d: sequence broken", i, r.Seq)
		}
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	s, _ := OpenFileKeyStore(b.TempDir(), nil)
	var secret string
	for i := range 10 {
		_, sec, err := s.Create(ctx, fmt.Sprint("k", i), []string{ScopeRead})
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
