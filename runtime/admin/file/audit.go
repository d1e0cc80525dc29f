package file

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
)

const (
	auditFile = "audit.jsonl"
	auditLock = "audit.lock"
)

// AuditLog appends records as JSON lines to <dir>/audit.jsonl, one fsync
// per record, under an flock so a server and the CLI writing directly to a
// data dir keep one sequence. Reads keep an index of line offsets that grows
// with the file, so paging does not re-read the whole log.
type AuditLog struct {
	dir string
	now func() time.Time

	mu      sync.Mutex
	offsets []int64 // start of each complete line
	scanned int64   // bytes indexed so far
}

var _ admin.AuditLog = (*AuditLog)(nil)

// OpenAuditLog opens the audit log in dir (normally <data dir>/admin).
func OpenAuditLog(dir string, now func() time.Time) (*AuditLog, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &AuditLog{dir: dir, now: now}, nil
}

func (l *AuditLog) path() string { return filepath.Join(l.dir, auditFile) }

// Append implements admin.AuditLog.
func (l *AuditLog) Append(ctx context.Context, r admin.Record) (admin.Record, error) {
	if err := ctx.Err(); err != nil {
		return admin.Record{}, err
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	lk, err := fsx.LockFile(ctx, filepath.Join(l.dir, auditLock), true)
	if err != nil {
		return admin.Record{}, fmt.Errorf("audit log: lock: %w", err)
	}
	defer lk.Unlock() //nolint:errcheck // closing releases it anyway
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path(), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return admin.Record{}, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	if err := l.indexLocked(f, true); err != nil {
		return admin.Record{}, err
	}
	r.Seq = uint64(len(l.offsets)) + 1
	b, err := json.Marshal(r)
	if err != nil {
		return admin.Record{}, fmt.Errorf("audit log: %w", err)
	}
	b = append(b, '\n')
	// l.scanned is the file's length here: indexLocked just read (and,
	// holding the flock, repaired) it to the end.
	if err := fsx.AppendSync(f, b, l.scanned); err != nil {
		return admin.Record{}, fmt.Errorf("audit log: %w", err)
	}
	l.offsets = append(l.offsets, l.scanned)
	l.scanned += int64(len(b))
	return r, nil
}

// indexLocked extends the offset index to the file's complete lines. A torn
// last line (crash mid-append) is left unindexed; Append (repair, holding
// the flock) terminates it so the next record starts on a line of its own.
// Readers never repair: the tail may be another process's append in flight.
func (l *AuditLog) indexLocked(f *os.File, repair bool) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if st.Size() < l.scanned { // truncated or replaced by an operator
		l.offsets, l.scanned = nil, 0
	}
	if st.Size() == l.scanned {
		return nil
	}
	br := bufio.NewReader(io.NewSectionReader(f, l.scanned, st.Size()-l.scanned))
	pos := l.scanned
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			// A torn line that was later terminated is not valid JSON and
			// is not a record; anything else is.
			if t := bytes.TrimSpace(line); len(t) > 0 && json.Valid(t) {
				l.offsets = append(l.offsets, pos)
			}
			pos += int64(len(line))
			continue
		}
		if err == io.EOF {
			if len(line) > 0 && repair {
				// Torn tail: terminate it so the next record starts cleanly.
				if _, werr := f.Write([]byte("\n")); werr == nil {
					pos += int64(len(line)) + 1
				}
			}
			break
		}
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
	}
	l.scanned = pos
	return nil
}

// List implements admin.AuditLog.
func (l *AuditLog) List(ctx context.Context, q admin.AuditQuery) (admin.AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return admin.AuditPage{}, err
	}
	if q.Page < 0 || q.PerPage <= 0 {
		return admin.AuditPage{}, &runtime.ValidationError{Entity: "audit query", Field: "page", Reason: "page must be ≥ 0 and per_page ≥ 1"}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return admin.AuditPage{Records: []admin.Record{}}, nil
	}
	if err != nil {
		return admin.AuditPage{}, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	if err := l.indexLocked(f, false); err != nil {
		return admin.AuditPage{}, err
	}
	filtered := q.Action != "" || q.KeyName != "" || q.EntityID != ""
	out := []admin.Record{}
	skip := q.Page * q.PerPage
	total := 0
	if !filtered {
		total = len(l.offsets)
	}
	// Newest first: walk the index backwards, decoding only what the page
	// needs (all lines when a filter is given, to count matches).
	for i := len(l.offsets) - 1; i >= 0; i-- {
		if !filtered && (len(out) == q.PerPage) {
			break
		}
		if !filtered && skip > 0 {
			skip--
			continue
		}
		rec, err := l.readAt(f, i)
		if err != nil {
			return admin.AuditPage{}, err
		}
		if filtered {
			if (q.Action != "" && rec.Action != q.Action) || (q.KeyName != "" && rec.KeyName != q.KeyName) ||
				(q.EntityID != "" && rec.EntityID != q.EntityID) {
				continue
			}
			total++
			if skip > 0 {
				skip--
				continue
			}
			if len(out) == q.PerPage {
				continue
			}
		}
		out = append(out, rec)
	}
	return admin.AuditPage{Records: out, Total: total}, nil
}

func (l *AuditLog) readAt(f *os.File, i int) (admin.Record, error) {
	end := l.scanned
	if i+1 < len(l.offsets) {
		end = l.offsets[i+1]
	}
	buf := make([]byte, end-l.offsets[i])
	if _, err := f.ReadAt(buf, l.offsets[i]); err != nil {
		return admin.Record{}, fmt.Errorf("audit log: %w", err)
	}
	if nl := bytes.IndexByte(buf, '\n'); nl >= 0 {
		buf = buf[:nl] // a repaired torn line may follow
	}
	var r admin.Record
	if err := json.Unmarshal(buf, &r); err != nil {
		// A damaged line is reported, not skipped: an audit log that hides
		// records is worse than one that errors.
		return admin.Record{}, fmt.Errorf("audit log %s: line %d: %v", l.path(), i+1, err)
	}
	if r.Seq == 0 {
		r.Seq = uint64(i) + 1
	}
	return r, nil
}

// intentDir holds the write-ahead intents: one file per write in flight,
// named so that names sort oldest first.
const intentDir = "intents"

var _ admin.IntentLog = (*AuditLog)(nil)

// BeginIntent implements admin.IntentLog: the record is written to its own
// file (temp, fsync, rename, fsync dir) before the commit it describes.
func (l *AuditLog) BeginIntent(ctx context.Context, r admin.Record) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	dir := filepath.Join(l.dir, intentDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("audit intent: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	id := fmt.Sprintf("%020d-%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("audit intent: %w", err)
	}
	if err := fsx.WriteFileAtomic(filepath.Join(dir, id+".json"), b, 0o600); err != nil {
		return "", fmt.Errorf("audit intent: %w", err)
	}
	return id, nil
}

// EndIntent implements admin.IntentLog.
func (l *AuditLog) EndIntent(_ context.Context, id string) error {
	if !validIntentID(id) {
		return fmt.Errorf("audit intent %q: %w", id, runtime.ErrInvalid)
	}
	// No directory fsync: an intent whose removal a crash undoes is found
	// already audited (or never committed) by the next reconciliation and
	// dropped then, so the removal need not be durable.
	if err := os.Remove(filepath.Join(l.dir, intentDir, id+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit intent: %w", err)
	}
	return nil
}

// PendingIntents implements admin.IntentLog. An intent file that does not
// decode (torn by a crash before its rename, which cannot happen, or
// damaged by hand) is an error: silently dropping it could lose a record.
func (l *AuditLog) PendingIntents(ctx context.Context) ([]admin.Intent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := filepath.Join(l.dir, intentDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit intents: %w", err)
	}
	var out []admin.Intent
	for _, e := range ents { // ReadDir sorts by name: oldest first
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validIntentID(id) {
			continue // a temp file of an unfinished BeginIntent: no commit followed it
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("audit intents: %w", err)
		}
		var r admin.Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("audit intent %s: %v", filepath.Join(dir, e.Name()), err)
		}
		out = append(out, admin.Intent{ID: id, Record: r})
	}
	return out, nil
}

// validIntentID accepts the names BeginIntent makes (digits, '-', hex).
func validIntentID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == '-') {
			return false
		}
	}
	return true
}
