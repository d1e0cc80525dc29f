package token

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// RevocationList remembers revoked token ids (jti) until the token would have
// expired anyway; after that the exp check rejects the token by itself.
// The file implementation serves one node; a Redis one (SET jti EXAT exp)
// shares revocations between nodes.
type RevocationList interface {
	Revoke(ctx context.Context, jti string, until time.Time) error
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// FileRevocationList keeps revocations in memory and appends each one as a
// JSON line to a file, synced before Revoke returns, so a revocation survives
// a crash. Expired entries are dropped when the file is opened (rewritten
// atomically) and whenever they outnumber the live ones.
type FileRevocationList struct {
	path string
	now  func() time.Time

	mu      sync.RWMutex
	f       *os.File
	entries map[string]int64 // jti -> exp (unix seconds)
	lines   int              // lines in the file, live or not
	// compactAt is the line count that triggers the next compaction: twice
	// the live entries after the last one, so expired entries cost at most
	// as much as live ones.
	compactAt int
}

type revocationLine struct {
	JTI string `json:"jti"`
	Exp int64  `json:"exp"`
}

// OpenFileRevocationList opens (or creates) the list at path, usually
// <data-dir>/revoked.jsonl. A line that does not decode is an error naming
// the line: silently forgetting a revocation would reactivate a token.
func OpenFileRevocationList(ctx context.Context, path string, now func() time.Time) (*FileRevocationList, error) {
	if now == nil {
		return nil, errors.New("token: OpenFileRevocationList needs a clock")
	}
	l := &FileRevocationList{path: path, now: now, entries: map[string]int64{}}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rl revocationLine
		if err := json.Unmarshal(line, &rl); err != nil || rl.JTI == "" {
			return nil, fmt.Errorf("%w: revocation list %s line %d: not a {\"jti\",\"exp\"} record", runtime.ErrInvalid, path, n)
		}
		if rl.Exp > l.entries[rl.JTI] {
			l.entries[rl.JTI] = rl.Exp
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("revocation list %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.compactLocked(); err != nil {
		return nil, err
	}
	return l, nil
}

// compactLocked drops expired entries and rewrites the file atomically
// (temporary file, fsync, rename), then reopens it for appending.
func (l *FileRevocationList) compactLocked() error {
	now := l.now().Unix()
	var buf bytes.Buffer
	for jti, exp := range l.entries {
		if exp <= now {
			delete(l.entries, jti)
			continue
		}
		b, _ := json.Marshal(revocationLine{JTI: jti, Exp: exp})
		buf.Write(b)
		buf.WriteByte('\n')
	}
	dir := filepath.Dir(l.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-revoked-*")
	if err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("revocation list: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("revocation list: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, err = os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	l.lines = len(l.entries)
	l.compactAt = max(1024, 2*l.lines)
	return nil
}

// Revoke records jti until the given expiry. Revoking twice is harmless.
func (l *FileRevocationList) Revoke(ctx context.Context, jti string, until time.Time) error {
	if jti == "" {
		return &runtime.ValidationError{Entity: "revocation", Field: "jti", Reason: "is empty"}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	exp := until.Unix()
	if exp <= l.now().Unix() {
		return nil // already expired: nothing left to revoke
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("%w: revocation list is closed", runtime.ErrUnavailable)
	}
	if old, ok := l.entries[jti]; ok && old >= exp {
		return nil
	}
	b, _ := json.Marshal(revocationLine{JTI: jti, Exp: exp})
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	l.entries[jti] = exp
	l.lines++
	if l.lines >= l.compactAt {
		return l.compactLocked()
	}
	return nil
}

// IsRevoked reports whether jti is revoked and not yet expired.
func (l *FileRevocationList) IsRevoked(_ context.Context, jti string) (bool, error) {
	l.mu.RLock()
	exp, ok := l.entries[jti]
	l.mu.RUnlock()
	return ok && exp > l.now().Unix(), nil
}

// Close closes the file.
func (l *FileRevocationList) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
