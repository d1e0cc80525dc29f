// Package file is the embedded default authz.Store: one data directory, no
// server. Every write is atomic and crash-safe.
//
// Layout of the data directory:
//
//	lock                      flock'ed around every commit of HEAD and read of it
//	HEAD                      {"revision":N,"document":"authz-N.json","profiles":"profiles-K"}
//	authz-N.json              the document at revision N (the extension's format + applications)
//	profiles.lock             held by the one Store that owns (may change) the profiles
//	profiles-K/ab/<sha256>.json   one file per user profile (ab = first hash byte)
//	profiles-K/journal-<n>    the owner's profile journal (group commit), see journal.go
//
// HEAD is the commit point. A write builds the new document file (temp file,
// fsync, rename), then replaces HEAD the same way and fsyncs the directory;
// a crash at any moment leaves HEAD naming the last committed document, and
// files no HEAD names are removed at the next Open. Writers hold an
// exclusive flock on lock and re-read HEAD under it, so a writer in another
// process is never overwritten: Apply sees its commit, checks the expected
// revision against it, and applies on top.
//
// Profiles do not change the revision. One Store owns them (profiles.go):
// it serves reads and unchanged patches from memory and journals changes
// with group-committed syncs, acknowledged when durable (DurabilitySync,
// the default) or at once with a bounded window (DurabilityRelaxed).
//
// Reads are served from an immutable in-memory model, rebuilt only when the
// revision changes. Writes through this Store are visible at once; a commit
// by another process is noticed by a stat of HEAD at most RefreshInterval
// (default 1 s) after it, which bounds the staleness of the login path.
package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
)

// Options configure a Store.
type Options struct {
	// Logger receives recovery and clean-up notes; nil discards them.
	Logger *slog.Logger
	// ProfileLimit caps each profile object in bytes (0: authz.DefaultProfileLimit).
	ProfileLimit int
	// RefreshInterval bounds how long a commit made by another process can
	// stay unseen by reads (0: 1 s; negative: check HEAD on every read).
	RefreshInterval time.Duration
	// Now is the clock for RefreshInterval (nil: time.Now).
	Now func() time.Time

	// Durability says when a changed profile patch is acknowledged:
	// DurabilitySync (default, "") after it is on disk, or
	// DurabilityRelaxed at once, durable within CommitWindow.
	Durability Durability
	// CommitWindow is how long a group commit collects patches before its
	// sync. Sync mode: 0 (default) syncs as soon as the previous sync
	// returned (patches arriving meanwhile share the next one); a positive
	// value adds that much latency to gather larger batches. Relaxed mode:
	// the bound on how long an acknowledged patch may stay volatile
	// (default 10ms).
	CommitWindow time.Duration
	// CheckpointBytes is the journal size after which the profiles it
	// holds are written to their files (default 4 MiB).
	CheckpointBytes int64
	// ReadOnly opens the store without taking ownership of the profiles:
	// reads see the files and the journal, profile writes fail with
	// ErrNotOwner. For commands that only read while a server runs.
	ReadOnly bool
}

// DefaultRelaxedWindow is CommitWindow's default in relaxed mode.
const DefaultRelaxedWindow = 10 * time.Millisecond

// DefaultCheckpointBytes is CheckpointBytes' default.
const DefaultCheckpointBytes = 4 << 20

const (
	headName   = "HEAD"
	lockName   = "lock"
	formatV1   = 1
	filePerm   = 0o600
	dirPerm    = 0o700
	docPrefix  = "authz-"
	profPrefix = "profiles-"
)

// head is the commit record.
type head struct {
	Format   int    `json:"format"`
	Revision uint64 `json:"revision"`
	Document string `json:"document,omitempty"`
	Profiles string `json:"profiles"`
}

// stamp identifies one version of the HEAD file cheaply (stat only).
type stamp struct {
	ino   uint64
	size  int64
	mtime int64
}

type state struct {
	model *authz.Model
	stamp stamp
}

// Store is the file-backed authz.Store.
type Store struct {
	dir  string
	opt  Options
	log  *slog.Logger
	cur  atomic.Pointer[state]
	next atomic.Int64 // unix nanos of the next HEAD check
	// reload serialises reloads inside this process so a burst of reads
	// after another process's commit decodes the document once.
	reload sync.Mutex
	// own is set while this store owns the profiles (profiles.go); ownMu
	// serialises taking ownership.
	own   atomic.Pointer[owner]
	ownMu sync.Mutex
	io    ioCounter
}

var (
	_ authz.Store         = (*Store)(nil)
	_ authz.ProfileLister = (*Store)(nil)
)

// Open opens (creating if needed) the data directory dir, recovers from an
// interrupted write by discarding files HEAD does not name, and loads the
// committed model.
func Open(ctx context.Context, dir string, opt Options) (*Store, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.RefreshInterval == 0 {
		opt.RefreshInterval = time.Second
	}
	switch opt.Durability {
	case "":
		opt.Durability = DurabilitySync
	case DurabilitySync, DurabilityRelaxed:
	default:
		return nil, &runtime.ValidationError{Entity: "file store", Field: "durability", Reason: fmt.Sprintf("is %q, must be %q or %q", opt.Durability, DurabilitySync, DurabilityRelaxed)}
	}
	if opt.CommitWindow < 0 {
		return nil, &runtime.ValidationError{Entity: "file store", Field: "commit_window", Reason: "must not be negative"}
	}
	if opt.CommitWindow == 0 && opt.Durability == DurabilityRelaxed {
		opt.CommitWindow = DefaultRelaxedWindow
	}
	if opt.CheckpointBytes <= 0 {
		opt.CheckpointBytes = DefaultCheckpointBytes
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	s := &Store{dir: dir, opt: opt, log: opt.Logger}
	err := s.withLock(ctx, true, func() error {
		h, st, err := s.readHead()
		if err != nil {
			return err
		}
		m, err := s.loadModel(h)
		if err != nil {
			return err
		}
		s.cur.Store(&state{model: m, stamp: st})
		s.cleanup(h)
		if opt.ReadOnly {
			return nil
		}
		err = s.takeOwnership(h)
		var ne *NotOwnerError
		if errors.As(err, &ne) {
			s.log.Info("file store: another store owns the profiles; this one reads them and may not change them", "dir", dir, "owner", ne.Holder)
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.scheduleCheck()
	return s, nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// withLock runs fn holding the directory's flock (exclusive for writers,
// shared for readers). Each call opens its own descriptor: flock locks belong
// to the open file description, so goroutines of one process exclude each
// other exactly like separate processes do.
func (s *Store) withLock(ctx context.Context, exclusive bool, fn func() error) error {
	return fsx.WithLock(ctx, s.path(lockName), exclusive, fn)
}

func statStamp(fi fs.FileInfo) stamp {
	st := stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// readHead reads the commit record; a directory without HEAD is an empty
// store at revision 0. Call it under the lock.
func (s *Store) readHead() (head, stamp, error) {
	f, err := os.Open(s.path(headName))
	if errors.Is(err, fs.ErrNotExist) {
		return head{Format: formatV1, Profiles: profPrefix + "0"}, stamp{}, nil
	}
	if err != nil {
		return head{}, stamp{}, fmt.Errorf("read %s: %w", s.path(headName), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return head{}, stamp{}, fmt.Errorf("read %s: %w", s.path(headName), err)
	}
	var h head
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return head{}, stamp{}, fmt.Errorf("read %s: %w", s.path(headName), err)
	}
	if h.Format != formatV1 || !safeName(h.Profiles, profPrefix) || (h.Document != "" && !safeName(h.Document, docPrefix)) {
		return head{}, stamp{}, fmt.Errorf("read %s: unsupported or damaged commit record %+v", s.path(headName), h)
	}
	return h, statStamp(fi), nil
}

func safeName(name, prefix string) bool {
	return strings.HasPrefix(name, prefix) && !strings.ContainsAny(name, `/\`) && name != "." && name != ".."
}

func (s *Store) loadModel(h head) (*authz.Model, error) {
	if h.Document == "" {
		return authz.NewModel(&authz.Document{}, h.Revision), nil
	}
	b, err := os.ReadFile(s.path(h.Document))
	if err != nil {
		return nil, fmt.Errorf("revision %d: %w", h.Revision, err)
	}
	var d authz.Document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("revision %d: %s: %w", h.Revision, s.path(h.Document), err)
	}
	return authz.NewModel(&d, h.Revision), nil
}

// cleanup removes what an interrupted write left behind: temp files and
// document or profile generations HEAD does not name. Call under the
// exclusive lock.
func (s *Store) cleanup(h head) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		// Only the store's own temp files: the data dir also holds the
		// revocation list, whose compaction may be writing a temp file now.
		ownTemp := fsx.IsTemp(n) && (strings.HasPrefix(n, headName) || strings.HasPrefix(n, docPrefix))
		stale := ownTemp || n == shardLockDir ||
			(strings.HasPrefix(n, docPrefix) && n != h.Document) ||
			(strings.HasPrefix(n, profPrefix) && n != h.Profiles)
		if !stale {
			continue
		}
		if err := os.RemoveAll(s.path(n)); err != nil {
			s.log.Warn("file store: cannot remove leftover", "path", s.path(n), "err", err)
		} else {
			s.log.Info("file store: removed leftover of an interrupted write", "path", s.path(n))
		}
	}
}

func (s *Store) scheduleCheck() {
	if s.opt.RefreshInterval > 0 {
		s.next.Store(s.opt.Now().Add(s.opt.RefreshInterval).UnixNano())
	}
}

// current returns the model, first reloading it when HEAD changed and the
// refresh interval has passed.
func (s *Store) current(ctx context.Context) (*authz.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := s.cur.Load()
	if s.opt.RefreshInterval > 0 && s.opt.Now().UnixNano() < s.next.Load() {
		return st.model, nil
	}
	s.scheduleCheck()
	fi, err := os.Stat(s.path(headName))
	s.io.op(1)
	if err == nil && statStamp(fi) == st.stamp {
		return st.model, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stat %s: %w", s.path(headName), err)
	}
	if errors.Is(err, fs.ErrNotExist) && st.stamp == (stamp{}) {
		return st.model, nil
	}
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	return s.cur.Load().model, nil
}

// refresh reloads the committed model under a shared lock.
func (s *Store) refresh(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	return s.withLock(ctx, false, func() error {
		h, st, err := s.readHead()
		if err != nil {
			return err
		}
		return s.adopt(h, st)
	})
}

// adopt makes the committed revision h current, loading it if needed. Call
// under the lock.
func (s *Store) adopt(h head, st stamp) error {
	cur := s.cur.Load()
	if cur.model.Revision() == h.Revision {
		if cur.stamp != st {
			s.cur.Store(&state{model: cur.model, stamp: st})
		}
		return nil
	}
	m, err := s.loadModel(h)
	if err != nil {
		return err
	}
	s.cur.Store(&state{model: m, stamp: st})
	return nil
}

// Refresh makes a commit of another process visible now.
func (s *Store) Refresh(ctx context.Context) error { return s.refresh(ctx) }

// ResolvePolicy implements authz.PolicyResolver.
func (s *Store) ResolvePolicy(ctx context.Context, q authz.PolicyQuery) (authz.Policy, error) {
	m, err := s.current(ctx)
	if err != nil {
		return authz.Policy{}, err
	}
	return m.Resolve(q), nil
}

// Application implements authz.ApplicationReader.
func (s *Store) Application(ctx context.Context, clientID string) (authz.Application, error) {
	m, err := s.current(ctx)
	if err != nil {
		return authz.Application{}, err
	}
	a, ok := m.Application(clientID)
	if !ok {
		return authz.Application{}, fmt.Errorf("application %q: %w", clientID, runtime.ErrNotFound)
	}
	return a, nil
}

// Revision implements authz.Reader.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	m, err := s.current(ctx)
	if err != nil {
		return 0, err
	}
	return m.Revision(), nil
}

// Snapshot implements authz.Reader.
func (s *Store) Snapshot(ctx context.Context) (*authz.Model, error) { return s.current(ctx) }

// Records implements authz.RecordReader.
func (s *Store) Records(ctx context.Context, fp authz.Footprint) (*authz.Document, uint64, error) {
	m, err := s.current(ctx)
	if err != nil {
		return nil, 0, err
	}
	return m.Records(fp), m.Revision(), nil
}

// Apply implements authz.Writer: under the exclusive lock it adopts the
// latest commit (of any process), checks expected against it, applies the
// ops to a copy and commits the result as revision+1.
func (s *Store) Apply(ctx context.Context, expected uint64, ops ...authz.Op) (uint64, error) {
	recs, replace := authz.ImportedProfiles(ops)
	var o *owner
	if replace {
		// Only the owner may swap the profile generation: its cache and
		// journal belong to the current one. Taken before the directory
		// lock, which taking ownership needs too.
		var err error
		if o, err = s.owned(ctx); err != nil {
			return 0, err
		}
	}
	var rev uint64
	err := s.withLock(ctx, true, func() error {
		h, st, err := s.readHead()
		if err != nil {
			return err
		}
		if err := s.adopt(h, st); err != nil {
			return err
		}
		if expected != 0 && expected != h.Revision {
			return &runtime.ConflictError{Expected: expected, Actual: h.Revision}
		}
		rev = h.Revision
		if len(ops) == 0 {
			return nil
		}
		doc := s.cur.Load().model.Document().CopyForWrite()
		for i, op := range ops {
			if err := op.Apply(doc); err != nil {
				return authz.OpError(i, len(ops), err)
			}
		}
		next := h
		next.Revision = h.Revision + 1
		next.Document = fmt.Sprintf("%s%d.json", docPrefix, next.Revision)
		if replace {
			end := o.beginImport()
			committed := ""
			defer func() { end(s, committed) }()
			defer func() {
				if rev == next.Revision {
					committed = next.Profiles
				}
			}()
			next.Profiles = fmt.Sprintf("%s%d", profPrefix, next.Revision)
			if err := s.writeProfileGeneration(next.Profiles, recs); err != nil {
				_ = os.RemoveAll(s.path(next.Profiles))
				return err
			}
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encode revision %d: %w", next.Revision, err)
		}
		if err := fsx.WriteFileAtomic(s.path(next.Document), b, filePerm); err != nil {
			return err
		}
		hb, _ := json.Marshal(next)
		if err := fsx.WriteFileAtomic(s.path(headName), append(hb, '\n'), filePerm); err != nil {
			return err
		}
		// Committed. What follows only tidies up.
		if h.Document != "" && h.Document != next.Document {
			_ = os.Remove(s.path(h.Document))
		}
		if next.Profiles != h.Profiles {
			_ = os.RemoveAll(s.path(h.Profiles))
		}
		fi, err := os.Stat(s.path(headName))
		var nst stamp
		if err == nil {
			nst = statStamp(fi)
		}
		s.cur.Store(&state{model: authz.NewModel(doc, next.Revision), stamp: nst})
		rev = next.Revision
		return nil
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// Close implements authz.Store: the owner commits what is pending, writes
// the journal into the profile files and gives up ownership.
func (s *Store) Close() error {
	o := s.own.Swap(nil)
	if o == nil {
		return nil
	}
	err := o.j.stop()
	return errors.Join(err, o.lock.Unlock())
}
