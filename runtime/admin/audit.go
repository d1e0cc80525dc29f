package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// Record is one audited write: who (the key), what (action, entity, id),
// the state before and after, and when.
type Record struct {
	// Seq numbers records from 1 in the order they were written.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	KeyID   string    `json:"key_id"`
	KeyName string    `json:"key_name"`
	// Action is e.g. "group.create", "group.members.add", "import".
	Action   string `json:"action"`
	Entity   string `json:"entity,omitempty"` // group, role, permission, application, user, document
	EntityID string `json:"entity_id,omitempty"`
	// RevisionBefore and RevisionAfter are the store revisions the write
	// went from and to.
	RevisionBefore uint64 `json:"revision_before"`
	RevisionAfter  uint64 `json:"revision_after"`
	// Before and After are the entity as it was and became (null when it did
	// not exist); for an import, a summary of the document.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// RequestID ties the record to the request's logs.
	RequestID string `json:"request_id,omitempty"`
}

// AuditQuery selects a page of records, newest first.
type AuditQuery struct {
	Page    int // 0-based
	PerPage int
	// Action, KeyName and EntityID filter exactly when non-empty.
	Action   string
	KeyName  string
	EntityID string
}

// AuditPage is one page of records, newest first.
type AuditPage struct {
	Records []Record
	Total   int // matching records
}

// AuditLog stores audit records.
type AuditLog interface {
	// Append stores r, assigning Seq (and Time when zero), and returns it.
	Append(ctx context.Context, r Record) (Record, error)
	// List returns a page of records, newest first.
	List(ctx context.Context, q AuditQuery) (AuditPage, error)
}

const (
	auditFile = "audit.jsonl"
	auditLock = "audit.lock"
)

// FileAuditLog appends records as JSON lines to <dir>/audit.jsonl, one fsync
// per record, under an flock so a server and the CLI writing directly to a
// data dir keep one sequence. Reads keep an index of line offsets that grows
// with the file, so paging does not re-read the whole log.
type FileAuditLog struct {
	dir string
	now func() time.Time

	mu      sync.Mutex
	offsets []int64 // start of each complete line
	scanned int64   // bytes indexed so far
}

var _ AuditLog = (*FileAuditLog)(nil)

// OpenFileAuditLog opens the audit log in dir (normally <data dir>/admin).
func OpenFileAuditLog(dir string, now func() time.Time) (*FileAuditLog, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &FileAuditLog{dir: dir, now: now}, nil
}

func (l *FileAuditLog) path() string { return filepath.Join(l.dir, auditFile) }

// Append implements AuditLog.
func (l *FileAuditLog) Append(ctx context.Context, r Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	unlock, err := lockFile(filepath.Join(l.dir, auditLock))
	if err != nil {
		return Record{}, fmt.Errorf("audit log: lock: %w", err)
	}
	defer unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path(), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return Record{}, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	if err := l.indexLocked(f, true); err != nil {
		return Record{}, err
	}
	r.Seq = uint64(len(l.offsets)) + 1
	b, err := json.Marshal(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit log: %w", err)
	}
	b = append(b, '\n')
	if _, err := f.Write(b); err != nil {
		return Record{}, fmt.Errorf("audit log: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Record{}, fmt.Errorf("audit log: %w", err)
	}
	l.offsets = append(l.offsets, l.scanned)
	l.scanned += int64(len(b))
	return r, nil
}

// indexLocked extends the offset index to the file's complete lines. A torn
// last line (crash mid-append) is left unindexed; Append (repair, holding
// the flock) terminates it so the next record starts on a line of its own.
// Readers never repair: the tail may be another process's append in flight.
func (l *FileAuditLog) indexLocked(f *os.File, repair bool) error {
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

// List implements AuditLog.
func (l *FileAuditLog) List(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if err := ctx.Err(); err != nil {
		return AuditPage{}, err
	}
	if q.Page < 0 || q.PerPage <= 0 {
		return AuditPage{}, &runtime.ValidationError{Entity: "audit query", Field: "page", Reason: "page must be ≥ 0 and per_page ≥ 1"}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return AuditPage{Records: []Record{}}, nil
	}
	if err != nil {
		return AuditPage{}, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	if err := l.indexLocked(f, false); err != nil {
		return AuditPage{}, err
	}
	filtered := q.Action != "" || q.KeyName != "" || q.EntityID != ""
	out := []Record{}
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
			return AuditPage{}, err
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
	return AuditPage{Records: out, Total: total}, nil
}

func (l *FileAuditLog) readAt(f *os.File, i int) (Record, error) {
	end := l.scanned
	if i+1 < len(l.offsets) {
		end = l.offsets[i+1]
	}
	buf := make([]byte, end-l.offsets[i])
	if _, err := f.ReadAt(buf, l.offsets[i]); err != nil {
		return Record{}, fmt.Errorf("audit log: %w", err)
	}
	if nl := bytes.IndexByte(buf, '\n'); nl >= 0 {
		buf = buf[:nl] // a repaired torn line may follow
	}
	var r Record
	if err := json.Unmarshal(buf, &r); err != nil {
		// A damaged line is reported, not skipped: an audit log that hides
		// records is worse than one that errors.
		return Record{}, fmt.Errorf("audit log %s: line %d: %v", l.path(), i+1, err)
	}
	if r.Seq == 0 {
		r.Seq = uint64(i) + 1
	}
	return r, nil
}
