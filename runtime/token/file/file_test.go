package file

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
	"github.com/claimsmith/claimsmith/runtime/token/tokentest"
)

func TestKeyStoreConformance(t *testing.T) {
	tokentest.KeyStores(t, func(t *testing.T) func() token.KeyStore {
		dir := filepath.Join(t.TempDir(), "keys")
		return func() token.KeyStore {
			s, err := NewKeyStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

func TestRevocationListConformance(t *testing.T) {
	tokentest.RevocationLists(t, func(t *testing.T, now func() time.Time) func() token.RevocationList {
		path := filepath.Join(t.TempDir(), "revoked.jsonl")
		var last *RevocationList
		t.Cleanup(func() {
			if last != nil {
				last.Close()
			}
		})
		// One node owns the file: a new view is a restart.
		return func() token.RevocationList {
			if last != nil {
				last.Close()
			}
			l, err := OpenRevocationList(context.Background(), path, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			last = l
			return l
		}
	})
}

func newClock() *tokentest.Clock {
	return tokentest.NewClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
}

func TestKeysPersistedPrivately(t *testing.T) {
	ctx := context.Background()
	s, err := NewKeyStore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k, err := token.GenerateKey(token.ES256, 0, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.Dir(), k.ID+".json")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(s.Dir()); di.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %v, want 0700", di.Mode().Perm())
	}
	ents, _ := os.ReadDir(s.Dir())
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	// A damaged key file is an error naming it, never a silently missing key.
	if err := os.WriteFile(p, []byte(`{"kid":"x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadKeys(ctx); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("damaged key file: %v", err)
	}
	if err := s.DeleteKey(ctx, "../x"); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("kid with a path: %v", err)
	}
}

func TestRevocationPersistsAndExpires(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	p := filepath.Join(t.TempDir(), "revoked.jsonl")
	l, err := OpenRevocationList(ctx, p, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Revoke(ctx, "short", clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := l.Revoke(ctx, "long", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := l.Revoke(ctx, "past", clock.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := l.Revoke(ctx, "", clock.Now().Add(time.Minute)); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("empty jti: %v", err)
	}
	for jti, want := range map[string]bool{"short": true, "long": true, "past": false, "other": false} {
		if got, _ := l.IsRevoked(ctx, jti); got != want {
			t.Errorf("%s: %v", jti, got)
		}
	}
	l.Close()
	// A restart (after the short one expired) still knows the long one and
	// compacts the expired one out of the file.
	clock.Advance(2 * time.Minute)
	l2, err := OpenRevocationList(ctx, p, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got, _ := l2.IsRevoked(ctx, "long"); !got {
		t.Fatal("revocation lost on restart")
	}
	b, _ := os.ReadFile(p)
	if strings.Contains(string(b), "short") || !strings.Contains(string(b), "long") {
		t.Fatalf("file after compaction: %s", b)
	}
	// A damaged line is an error naming the file and line.
	if err := os.WriteFile(p, []byte("{\"jti\":\"a\",\"exp\":99999999999}\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRevocationList(ctx, p, clock.Now, nil); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("damaged file: %v", err)
	}
}

func TestRevocationCompactsWhileRunning(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	p := filepath.Join(t.TempDir(), "revoked.jsonl")
	l, err := OpenRevocationList(ctx, p, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 3000 {
		if err := l.Revoke(ctx, "jti-"+string(rune('a'+i%26))+strings.Repeat("x", i%50)+"-"+time.Duration(i).String(), clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			clock.Advance(2 * time.Second) // everything so far expires
		}
	}
	l.mu.RLock()
	n := len(l.entries)
	l.mu.RUnlock()
	if n > 2048 {
		t.Fatalf("%d entries kept in memory although almost all expired", n)
	}
}

// syncBuffer collects log output written from the code under test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTornLastLineRecovered: a crash in the middle of an append leaves a
// last line without its newline. Before, the server refused to start on
// it; now the line is dropped (its Revoke never returned), logged, the
// file rewritten clean, and every confirmed revocation kept. A damaged
// line that is not the torn tail is still an error.
func TestTornLastLineRecovered(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	p := filepath.Join(t.TempDir(), "revoked.jsonl")
	l, err := OpenRevocationList(ctx, p, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, jti := range []string{"a", "b"} {
		if err := l.Revoke(ctx, jti, clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"jti":"c","ex`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var logs syncBuffer
	l2, err := OpenRevocationList(ctx, p, clock.Now, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("torn last line stopped the start: %v", err)
	}
	if !strings.Contains(logs.String(), "torn last line") || !strings.Contains(logs.String(), "line=3") {
		t.Fatalf("recovery not logged: %q", logs.String())
	}
	for jti, want := range map[string]bool{"a": true, "b": true, "c": false} {
		if got, _ := l2.IsRevoked(ctx, jti); got != want {
			t.Errorf("%s revoked = %v, want %v", jti, got, want)
		}
	}
	// Appending after the recovery gives a file the next start reads whole.
	if err := l2.Revoke(ctx, "d", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	b, _ := os.ReadFile(p)
	if bytes.Contains(b, []byte(`"ex`+"{")) || !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("file after recovery: %q", b)
	}
	l3, err := OpenRevocationList(ctx, p, clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	for _, jti := range []string{"a", "b", "d"} {
		if got, _ := l3.IsRevoked(ctx, jti); !got {
			t.Errorf("%s lost", jti)
		}
	}
	// A damaged line followed by a newline is not a torn append.
	if err := os.WriteFile(p, []byte("{\"jti\":\"a\",\"exp\":99999999999}\n{\"jti\":\"c\",\"ex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRevocationList(ctx, p, clock.Now, nil); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("damaged complete line: %v", err)
	}
}
