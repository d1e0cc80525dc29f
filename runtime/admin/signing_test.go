package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	adminfile "github.com/claimsmith/claimsmith/runtime/admin/file"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/token"
	tokenfile "github.com/claimsmith/claimsmith/runtime/token/file"
)

func signingKeys(t *testing.T, dir string, now func() time.Time) *token.KeySet {
	t.Helper()
	st, err := tokenfile.NewKeyStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewKeySet(st, token.KeySetConfig{}, now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ks
}

// Every rotation leaves an audit record naming the caller, the new kid and
// the retiring one, and no key material.
func TestRotateSigningKeyAudits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	audit, err := adminfile.OpenAuditLog(dir+"/audit", nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admin.NewService(admin.ServiceConfig{Store: memory.New(memory.Options{}), Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ks := signingKeys(t, dir+"/keys", func() time.Time { return now })
	caller := admin.Caller{KeyID: "k-1", KeyName: "ops", RequestID: "req-1"}

	// No key yet: the first one signs at once, and is audited too.
	first, err := svc.RotateSigningKey(ctx, caller, ks, "")
	if err != nil {
		t.Fatal(err)
	}
	if first.Key.State != token.StateActive || first.Retiring != "" || first.Record.Seq != 1 {
		t.Fatalf("first rotation: %+v", first)
	}
	rot, err := svc.RotateSigningKey(ctx, caller, ks, token.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Key.State != token.StateNext || rot.Key.Algorithm != token.EdDSA || rot.Retiring != first.Key.ID {
		t.Fatalf("rotation: %+v", rot)
	}
	page, err := svc.AuditLog(ctx, admin.AuditQuery{PerPage: 10, Action: admin.ActionKeysRotate})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 2 {
		t.Fatalf("%d keys.rotate records, want 2", page.Total)
	}
	rec := page.Records[0]
	if rec.KeyName != "ops" || rec.KeyID != "k-1" || rec.RequestID != "req-1" || rec.Entity != admin.EntitySigningKey || rec.EntityID != rot.Key.ID {
		t.Fatalf("record %+v", rec)
	}
	var before, after map[string]any
	if json.Unmarshal(rec.Before, &before) != nil || json.Unmarshal(rec.After, &after) != nil {
		t.Fatalf("before %s after %s", rec.Before, rec.After)
	}
	if before["active"] != first.Key.ID || after["next"] != rot.Key.ID || after["retires"] != first.Key.ID || after["alg"] != "EdDSA" {
		t.Fatalf("before %s after %s", rec.Before, rec.After)
	}
	// Kids only: nothing of the private or public key.
	for _, raw := range [][]byte{rec.Before, rec.After} {
		for _, bad := range []string{`"d"`, `"x"`, `"n"`, "PRIVATE"} {
			if strings.Contains(string(raw), bad) {
				t.Fatalf("key material %s in %s", bad, raw)
			}
		}
	}
	// A second rotation while the first still propagates takes over from
	// the first's next key, not from the active one.
	now = now.Add(time.Minute)
	again, err := svc.RotateSigningKey(ctx, caller, ks, "")
	if err != nil {
		t.Fatal(err)
	}
	if again.Retiring != rot.Key.ID {
		t.Fatalf("second rotation retires %q, want the pending %q", again.Retiring, rot.Key.ID)
	}
	// Filtering by the new kid finds it, as the audit page does.
	if p, _ := svc.AuditLog(ctx, admin.AuditQuery{PerPage: 10, EntityID: rot.Key.ID}); p.Total != 1 {
		t.Fatalf("by kid: %d", p.Total)
	}
}

// A rotation that fails writes no record; a missing key set is refused.
func TestRotateSigningKeyRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	audit, err := adminfile.OpenAuditLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ks := signingKeys(t, dir+"/keys", time.Now)
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RotateSigningKey(ctx, ks, audit, admin.Caller{KeyName: "ops"}, "HS256", nil, nil); err == nil {
		t.Fatal("HS256 rotation accepted")
	}
	if _, err := admin.RotateSigningKey(ctx, nil, audit, admin.Caller{}, "", nil, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("nil keys: %v", err)
	}
	if p, _ := audit.List(ctx, admin.AuditQuery{PerPage: 10}); p.Total != 0 {
		t.Fatalf("%d records after refused rotations", p.Total)
	}
}

// failingAudit is an audit log whose appends fail (a full disk).
type failingAudit struct{ admin.AuditLog }

func (failingAudit) Append(context.Context, admin.Record) (admin.Record, error) {
	return admin.Record{}, errors.New("disk full")
}

// A key cannot be taken back: when its record cannot be written the
// rotation stands, reported by Record.Seq 0 (and logged).
func TestRotateSigningKeyAuditFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	audit, err := adminfile.OpenAuditLog(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ks := signingKeys(t, dir+"/keys", time.Now)
	if err := ks.Init(ctx); err != nil {
		t.Fatal(err)
	}
	rot, err := admin.RotateSigningKey(ctx, ks, failingAudit{audit}, admin.Caller{KeyName: "ops"}, "", nil, nil)
	if err != nil || rot.Record.Seq != 0 || rot.Key.State != token.StateNext || len(ks.Infos()) != 2 {
		t.Fatalf("rotation with a failing audit log: %+v %v", rot, err)
	}
}
