package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// RevocationList keeps revocations in memory and appends each one as a
// JSON line to a file, synced before Revoke returns, so a revocation survives
// a crash. Expired entries are dropped when the file is opened (rewritten
// atomically) and whenever they outnumber the live ones.
type RevocationList struct {
	path string
	now  func() time.Time
	log  *slog.Logger

	mu      sync.RWMutex
	f       *os.File
	entries map[string]int64 // jti -> exp (unix seconds)
	lines   int              // lines in the file, live or not
	size    int64            // bytes in the file
	// compactAt is the line count that triggers the next compaction: twice
	// the live entries after the last one, so expired entries cost at most
	// as much as live ones.
	compactAt int
}

type revocationLine struct {
	JTI string `json:"jti"`
	Exp int64  `json:"exp"`
}

var _ token.RevocationList = (*RevocationList)(nil)

// OpenRevocationList opens (or creates) the list at path, usually
// <data-dir>/revoked.jsonl. A line that does not decode is an error naming
// the line: silently forgetting a revocation would reactivate a token. The
// one exception is a torn last line (no newline: a crash during an append,
// whose Revoke never returned): it is dropped and logged, and the file is
// rewritten without it.
func OpenRevocationList(ctx context.Context, path string, now func() time.Time, log *slog.Logger) (*RevocationList, error) {
	if now == nil {
		return nil, errors.New("token/file: OpenRevocationList needs a clock")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &RevocationList{path: path, now: now, log: log, entries: map[string]int64{}}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	for n := 1; len(b) > 0; n++ {
		raw, rest, complete := bytes.Cut(b, []byte{'\n'})
		b = rest
		line := bytes.TrimSpace(raw)
		if len(line) == 0 {
			continue
		}
		var rl revocationLine
		if err := json.Unmarshal(line, &rl); err != nil || rl.JTI == "" {
			if !complete {
				log.WarnContext(ctx, "revocation list: dropped a torn last line (an append interrupted by a crash; its revocation was never confirmed)",
					"path", path, "line", n, "bytes", len(raw))
				break
			}
			return nil, fmt.Errorf("%w: revocation list %s line %d: not a {\"jti\",\"exp\"} record", runtime.ErrInvalid, path, n)
		}
		if rl.Exp > l.entries[rl.JTI] {
			l.entries[rl.JTI] = rl.Exp
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Always rewritten: expired entries go, and appends never follow a
	// torn line's bytes.
	if err := l.compactLocked(); err != nil {
		return nil, err
	}
	return l, nil
}

// compactLocked drops expired entries and rewrites the file atomically
// (temporary file, fsync, rename), then reopens it for appending.
func (l *RevocationList) compactLocked() error {
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
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	if err := fsx.WriteFileAtomic(l.path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	if l.f != nil {
		l.f.Close()
	}
	var err error
	l.f, err = os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	l.lines, l.size = len(l.entries), int64(buf.Len())
	l.compactAt = max(1024, 2*l.lines)
	return nil
}

// Revoke records jti until the given expiry. Revoking twice is harmless.
func (l *RevocationList) Revoke(ctx context.Context, jti string, until time.Time) error {
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
	b = append(b, '\n')
	if err := fsx.AppendSync(l.f, b, l.size); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	l.size += int64(len(b))
	l.entries[jti] = exp
	l.lines++
	if l.lines >= l.compactAt {
		return l.compactLocked()
	}
	return nil
}

// IsRevoked reports whether jti is revoked and not yet expired.
func (l *RevocationList) IsRevoked(_ context.Context, jti string) (bool, error) {
	l.mu.RLock()
	exp, ok := l.entries[jti]
	l.mu.RUnlock()
	return ok && exp > l.now().Unix(), nil
}

// Close closes the file.
func (l *RevocationList) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
