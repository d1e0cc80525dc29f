// Package admintest is the conformance suite of the admin key stores and
// audit logs (runtime/admin/file, runtime/admin/redis): every backend runs
// it, so the admin API and the CLI get the same behaviour from each.
package admintest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
)

// Backend opens views of one backend's data. Every call of Keys or Audit
// returns a new view of the same (initially empty) data, as another process
// or node would see it.
type Backend struct {
	Keys func(t *testing.T) admin.KeyStore
	// Audit's records get times from now (nil: the wall clock).
	Audit func(t *testing.T, now func() time.Time) admin.AuditLog
	// Store opens a view of the backend's authorization store (the
	// service's writes, OAuth clients among them); a view is closed before
	// the next one opens, as a restart would.
	Store func(t *testing.T) admin.Store
}

// Opener returns a fresh backend for one test.
type Opener func(t *testing.T) Backend

// Run runs the whole suite.
func Run(t *testing.T, open Opener) {
	t.Run("Keys", func(t *testing.T) { RunKeys(t, open(t)) })
	t.Run("KeysConcurrent", func(t *testing.T) { RunKeysConcurrent(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { RunAudit(t, open(t)) })
	t.Run("AuditConcurrent", func(t *testing.T) { RunAuditConcurrent(t, open(t)) })
	t.Run("Clients", func(t *testing.T) { RunClients(t, open(t)) })
}

// RunKeys: create, authenticate from another view, refuse bad input,
// list in creation order, revoke by name and by id.
func RunKeys(t *testing.T, b Backend) {
	ctx := context.Background()
	node1, node2 := b.Keys(t), b.Keys(t)
	k, secret, err := node1.Create(ctx, "deploy bot", []string{admin.ScopeWrite, admin.ScopeRead, admin.ScopeWrite})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "csk_"+k.ID+"_") || len(secret) < 50 {
		t.Fatalf("secret %q", secret)
	}
	if k.Hash == "" || strings.Contains(k.Hash, secret) {
		t.Fatalf("key hash %q", k.Hash)
	}
	got, err := node2.Authenticate(ctx, secret)
	if err != nil {
		t.Fatalf("another view does not see the key: %v", err)
	}
	if got.ID != k.ID || got.Name != "deploy bot" || strings.Join(got.Scopes, " ") != "read:authz write:authz" {
		t.Fatalf("key %+v", got)
	}
	for _, bad := range []string{"", "csk_", secret + "x", secret[:len(secret)-1]} {
		if _, err := node2.Authenticate(ctx, bad); !errors.Is(err, runtime.ErrUnauthenticated) {
			t.Errorf("%q: want ErrUnauthenticated, got %v", bad, err)
		}
	}
	for _, c := range []struct {
		name   string
		scopes []string
		want   error
	}{
		{"deploy bot", []string{admin.ScopeRead}, runtime.ErrExists},
		{"", []string{admin.ScopeRead}, runtime.ErrInvalid},
		{" padded", []string{admin.ScopeRead}, runtime.ErrInvalid},
		{"x", nil, runtime.ErrInvalid},
		{"x", []string{"root"}, runtime.ErrInvalid},
	} {
		if _, _, err := node2.Create(ctx, c.name, c.scopes); !errors.Is(err, c.want) {
			t.Errorf("Create(%q, %v): want %v, got %v", c.name, c.scopes, c.want, err)
		}
	}
	var ids []string
	ids = append(ids, k.ID)
	secrets := map[string]string{}
	for i := range 4 {
		k, s, err := node2.Create(ctx, fmt.Sprint("key ", i), []string{admin.ScopeExport})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
		secrets[k.ID] = s
	}
	list, err := node1.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, k := range list {
		listed = append(listed, k.ID)
		if k.Hash == "" {
			t.Errorf("listed key %s has no hash", k.ID)
		}
	}
	if strings.Join(listed, " ") != strings.Join(ids, " ") {
		t.Fatalf("List = %v, want creation order %v", listed, ids)
	}
	if err := node2.Revoke(ctx, "deploy bot"); err != nil {
		t.Fatal(err)
	}
	if _, err := node1.Authenticate(ctx, secret); !errors.Is(err, runtime.ErrUnauthenticated) {
		t.Fatalf("revoked key still works on the other view: %v", err)
	}
	if err := node1.Revoke(ctx, ids[2]); err != nil {
		t.Fatalf("revoke by id: %v", err)
	}
	if _, err := node2.Authenticate(ctx, secrets[ids[1]]); err != nil {
		t.Fatalf("unrevoked key: %v", err)
	}
	if err := node1.Revoke(ctx, "deploy bot"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if list, _ := node2.List(ctx); len(list) != 3 {
		t.Fatalf("%d keys after two revokes, want 3", len(list))
	}
}

// RunKeysConcurrent: concurrent creates from separate views lose nothing,
// and of concurrent creates of one name exactly one wins.
func RunKeysConcurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		s := b.Keys(t)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, _, err := s.Create(ctx, fmt.Sprintf("k%d", i), []string{admin.ScopeRead}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			_, _, err := s.Create(ctx, "race", []string{admin.ScopeRead})
			if err != nil && !errors.Is(err, runtime.ErrExists) {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d creates of one name succeeded, want 1", wins)
	}
	list, err := b.Keys(t).List(ctx)
	if err != nil || len(list) != 21 {
		t.Fatalf("lost updates: %d keys, %v", len(list), err)
	}
}

// RunAudit: appends are numbered from 1 and timed by the clock; pages are
// newest first; filters apply before paging; bad pages are refused.
func RunAudit(t *testing.T, b Backend) {
	ctx := context.Background()
	clock := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l := b.Audit(t, func() time.Time { return clock })
	if p, err := l.List(ctx, admin.AuditQuery{PerPage: 10}); err != nil || len(p.Records) != 0 || p.Total != 0 {
		t.Fatalf("empty log: %+v %v", p, err)
	}
	for i := range 7 {
		who := "alice"
		if i%2 == 1 {
			who = "bob"
		}
		r, err := l.Append(ctx, admin.Record{KeyName: who, KeyID: "id-" + who, Action: fmt.Sprintf("a%d", i), Entity: "group",
			EntityID: fmt.Sprint("g", i%3), RevisionBefore: uint64(i), RevisionAfter: uint64(i + 1),
			Before: []byte(`{"x":1}`), After: []byte(`{"x":2}`), RequestID: fmt.Sprint("req-", i)})
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
	r := p.Records[0]
	if r.KeyName != "alice" || r.KeyID != "id-alice" || r.Action != "a6" || r.Entity != "group" || r.EntityID != "g0" ||
		r.RevisionBefore != 6 || r.RevisionAfter != 7 || string(r.Before) != `{"x":1}` || string(r.After) != `{"x":2}` ||
		r.RequestID != "req-6" || !r.Time.Equal(clock) {
		t.Fatalf("record does not round-trip: %+v", r)
	}
	p, _ = l.List(ctx, admin.AuditQuery{Page: 2, PerPage: 3})
	if len(p.Records) != 1 || p.Records[0].Seq != 1 || p.Records[0].Action != "a0" {
		t.Fatalf("page 2: %+v", p)
	}
	p, _ = l.List(ctx, admin.AuditQuery{Page: 1, PerPage: 2, KeyName: "bob"})
	if p.Total != 3 || len(p.Records) != 1 || p.Records[0].Seq != 2 {
		t.Fatalf("bob page 1: %+v", p)
	}
	p, _ = l.List(ctx, admin.AuditQuery{PerPage: 10, EntityID: "g1"})
	if p.Total != 2 || p.Records[0].Seq != 5 || p.Records[1].Seq != 2 {
		t.Fatalf("entity g1: %+v", p)
	}
	p, _ = l.List(ctx, admin.AuditQuery{PerPage: 10, Action: "a3", KeyName: "bob"})
	if p.Total != 1 || p.Records[0].Seq != 4 {
		t.Fatalf("action a3 by bob: %+v", p)
	}
	p, _ = l.List(ctx, admin.AuditQuery{Page: 9, PerPage: 10})
	if p.Total != 7 || len(p.Records) != 0 {
		t.Fatalf("page past the end: %+v", p)
	}
	for _, q := range []admin.AuditQuery{{Page: -1, PerPage: 2}, {PerPage: 0}} {
		if _, err := l.List(ctx, q); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("List(%+v): want ErrInvalid, got %v", q, err)
		}
	}
	// Another view sees the same log and continues its sequence.
	other := b.Audit(t, nil)
	if r, err := other.Append(ctx, admin.Record{KeyName: "carol", Action: "later"}); err != nil || r.Seq != 8 || r.Time.IsZero() {
		t.Fatalf("append from another view: %+v %v", r, err)
	}
	if p, _ := l.List(ctx, admin.AuditQuery{PerPage: 1}); p.Total != 8 || p.Records[0].Action != "later" {
		t.Fatalf("first view after another's append: %+v", p)
	}
}

// RunAuditConcurrent: several views appending at once keep one gap-free
// sequence.
func RunAuditConcurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		l := b.Audit(t, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := l.Append(ctx, admin.Record{KeyName: fmt.Sprint(w), Action: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	p, err := b.Audit(t, nil).List(ctx, admin.AuditQuery{PerPage: 1000})
	if err != nil || p.Total != 100 {
		t.Fatalf("%d records, %v", p.Total, err)
	}
	for i, r := range p.Records {
		if r.Seq != uint64(100-i) {
			t.Fatalf("record %d has seq %d: sequence broken", i, r.Seq)
		}
	}
}
