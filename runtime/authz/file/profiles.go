package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
)

// Profiles. One Store owns the profiles of a data directory: it holds an
// exclusive flock on DIR/profiles.lock for its lifetime, keeps every
// profile it has read or written in memory, and writes changes through the
// journal (journal.go) with group-committed syncs. Because no other writer
// can exist, a read or an unchanged patch is served from memory: no system
// call, no file lock. Other stores on the directory (a CLI command reading
// while the server runs; ReadOnly stores) read the files and overlay the
// journal, and are refused profile writes (ErrNotOwner).
//
// Why the store takes its own lock beside the data dir's owner lock of
// `serve`: read-only commands open the store without that lock while the
// server runs, and a second Store in one process (tests, tools) must not
// silently keep a stale cache; the flock makes the assumption checked, not
// trusted.

const ownerLockName = "profiles.lock"

// shardLockDir held the per-shard profile locks of the previous layout;
// Open removes it.
const shardLockDir = "plocks"

// Durability says when a changed profile's patch is acknowledged.
type Durability string

const (
	// DurabilitySync (the default): PatchProfile returns after the patch
	// is on disk (its batch's fdatasync returned). A crash loses nothing
	// that was acknowledged.
	DurabilitySync Durability = "sync"
	// DurabilityRelaxed: PatchProfile returns at once; the patch is
	// durable within CommitWindow plus one sync. A crash loses at most the
	// patches of that last window.
	DurabilityRelaxed Durability = "relaxed"
)

// ErrNotOwner is a profile write through a Store that does not own the data
// directory's profiles (another process or Store holds profiles.lock).
var ErrNotOwner = errors.New("profiles are owned by another store")

// NotOwnerError is ErrNotOwner with the directory and the holder's note. It
// also matches runtime.ErrUnavailable.
type NotOwnerError struct {
	Dir    string
	Holder string // what the owner wrote into the lock file, e.g. {"pid":123,...}
}

func (e *NotOwnerError) Error() string {
	h := e.Holder
	if h == "" {
		h = "unknown holder"
	}
	return fmt.Sprintf("data dir %s: %v (%s): only the owning process (the running server) may change profiles", e.Dir, ErrNotOwner, h)
}

// Is reports ErrNotOwner and runtime.ErrUnavailable.
func (e *NotOwnerError) Is(target error) bool {
	return target == ErrNotOwner || target == runtime.ErrUnavailable
}

// IOStats counts the file-system calls the store made (opens, reads,
// writes, renames, stats, directory reads, locks) and, separately, the
// syncs (fsync, fdatasync, syncfs). Tests and benchmarks use it to check
// what a login costs.
type IOStats struct {
	Ops   int64
	Syncs int64
}

type ioCounter struct{ ops, syncs atomic.Int64 }

func (c *ioCounter) op(n int64)   { c.ops.Add(n) }
func (c *ioCounter) sync(n int64) { c.syncs.Add(n) }

// IOStats returns the counts since Open.
func (s *Store) IOStats() IOStats { return IOStats{Ops: s.io.ops.Load(), Syncs: s.io.syncs.Load()} }

// profileFile is a user's profile on disk. The user id is kept inside: the
// file name is a hash (user ids hold characters no file name may).
type profileFile struct {
	UserID       string         `json:"user_id"`
	AppMetadata  map[string]any `json:"app_metadata"`
	UserMetadata map[string]any `json:"user_metadata"`
}

// profileRel is the path of userID's profile inside a generation directory.
func profileRel(userID string) string {
	sum := sha256.Sum256([]byte(userID))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(h[:2], h+".json")
}

func decodeProfileFile(userID, where string, b []byte) (runtime.Profile, error) {
	var pf profileFile
	if err := json.Unmarshal(b, &pf); err != nil {
		return runtime.Profile{}, fmt.Errorf("profile of user %q: %s: %w", userID, where, err)
	}
	if pf.UserID != userID {
		return runtime.Profile{}, fmt.Errorf("profile of user %q: %s belongs to %q (hash collision or damaged file)", userID, where, pf.UserID)
	}
	return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID, AppMetadata: pf.AppMetadata, UserMetadata: pf.UserMetadata}), nil
}

// readProfileFile reads a user's file; enc is nil when there is none.
func (s *Store) readProfileFile(genDir, userID string) (runtime.Profile, []byte, error) {
	path := filepath.Join(genDir, profileRel(userID))
	b, err := os.ReadFile(path)
	s.io.op(1)
	if errors.Is(err, fs.ErrNotExist) {
		return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID}), nil, nil
	}
	if err != nil {
		return runtime.Profile{}, nil, fmt.Errorf("profile of user %q: %w", userID, err)
	}
	p, err := decodeProfileFile(userID, path, b)
	return p, b, err
}

// owner is the state of the Store that holds profiles.lock.
type owner struct {
	lock *fsx.Lock
	// gen is held shared by changing patches while they enqueue and
	// exclusively by an import swapping the profile generation.
	gen   sync.RWMutex
	cache atomic.Pointer[profCache]
	j     *journal
}

// profCache is the in-memory profiles of one generation.
type profCache struct {
	dir   string   // the generation directory
	users sync.Map // user id → *profEntry
}

type profEntry struct {
	mu  sync.Mutex // serialises changing patches of one user
	cur atomic.Pointer[profVersion]
}

// profVersion is one immutable state of a profile.
type profVersion struct {
	p     runtime.Profile // canonical: decoded from enc, never modified
	enc   []byte          // the file's JSON; nil: nothing stored
	batch *batch          // the commit carrying it; nil when read from disk
}

type ownerNote struct {
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

// takeOwnership tries to become the profiles' owner: take the lock, recover
// the current generation (temp files, journal), start the committer. A
// lock held elsewhere is a *NotOwnerError. Call under the exclusive
// directory lock.
func (s *Store) takeOwnership(h head) error {
	l, err := fsx.TryLock(s.path(ownerLockName))
	s.io.op(2)
	var le *fsx.LockedError
	if errors.As(err, &le) {
		return &NotOwnerError{Dir: s.dir, Holder: strings.TrimSpace(string(le.Holder))}
	}
	if err != nil {
		return err
	}
	note, _ := json.Marshal(ownerNote{PID: os.Getpid(), Since: s.opt.Now().UTC().Truncate(time.Second)})
	_ = l.SetNote(append(note, '\n'))
	genDir := s.path(h.Profiles)
	next, err := s.recoverGeneration(genDir)
	if err != nil {
		_ = l.Unlock()
		return err
	}
	o := &owner{lock: l, j: newJournal(s, genDir, next)}
	o.cache.Store(&profCache{dir: genDir})
	s.own.Store(o)
	return nil
}

// owned returns the owner state, taking ownership now if the store is not
// ReadOnly and the previous owner has gone.
func (s *Store) owned(ctx context.Context) (*owner, error) {
	if o := s.own.Load(); o != nil {
		return o, nil
	}
	if s.opt.ReadOnly {
		return nil, &NotOwnerError{Dir: s.dir, Holder: "this store was opened read-only"}
	}
	s.ownMu.Lock()
	defer s.ownMu.Unlock()
	if o := s.own.Load(); o != nil {
		return o, nil
	}
	err := s.withLock(ctx, true, func() error {
		h, st, err := s.readHead()
		if err != nil {
			return err
		}
		if err := s.adopt(h, st); err != nil {
			return err
		}
		return s.takeOwnership(h)
	})
	if err != nil {
		return nil, err
	}
	return s.own.Load(), nil
}

// entry returns the cached profile of userID, reading its file on the first
// access. Every user journalled since the last start has an entry (entries
// are never dropped), so the file of a user without one is current.
func (s *Store) entry(c *profCache, userID string) (*profEntry, error) {
	if e, ok := c.users.Load(userID); ok {
		return e.(*profEntry), nil
	}
	p, enc, err := s.readProfileFile(c.dir, userID)
	if err != nil {
		return nil, err
	}
	e := &profEntry{}
	e.cur.Store(&profVersion{p: p, enc: enc})
	actual, _ := c.users.LoadOrStore(userID, e)
	return actual.(*profEntry), nil
}

// Profile implements runtime.ProfileStore. The owner answers from memory;
// other stores read the file and the journal.
func (s *Store) Profile(ctx context.Context, userID string) (runtime.Profile, error) {
	if err := ctx.Err(); err != nil {
		return runtime.Profile{}, err
	}
	if o := s.own.Load(); o != nil {
		e, err := s.entry(o.cache.Load(), userID)
		if err != nil {
			return runtime.Profile{}, err
		}
		return clonedProfile(e.cur.Load().p), nil
	}
	var p runtime.Profile
	err := s.withLock(ctx, false, func() error {
		h, _, err := s.readHead()
		if err != nil {
			return err
		}
		// The journal first: the owner's checkpoint writes the files before
		// it drops a segment, so a record missed here is in the file.
		dir := s.path(h.Profiles)
		latest, _, err := readJournal(dir, &s.io)
		if err != nil {
			return err
		}
		if enc, ok := latest[userID]; ok {
			p, err = decodeProfileFile(userID, "profile journal", enc)
			return err
		}
		p, _, err = s.readProfileFile(dir, userID)
		return err
	})
	return p, err
}

func clonedProfile(p runtime.Profile) runtime.Profile {
	return authz.ProfileFromRecord(authz.ProfileRecord{UserID: p.UserID, AppMetadata: p.AppMetadata, UserMetadata: p.UserMetadata})
}

// PatchProfile implements runtime.ProfileStore: merge the patches into the
// user's profile (RFC 7396) and make the result durable through the
// journal. A patch that changes nothing returns from memory, with no
// system call and no lock (in sync mode it first waits for the commit of
// the version it found, should that still be in flight, so what it
// acknowledges is durable). A patch creating a profile with nothing in it
// writes nothing. The authz revision does not change.
func (s *Store) PatchProfile(ctx context.Context, userID string, appMetadata, userMetadata map[string]any) (runtime.Profile, error) {
	if userID == "" {
		return runtime.Profile{}, &runtime.ValidationError{Entity: "profile", Field: "user_id", Reason: "is required"}
	}
	if err := ctx.Err(); err != nil {
		return runtime.Profile{}, err
	}
	o, err := s.owned(ctx)
	if err != nil {
		return runtime.Profile{}, err
	}
	for {
		c := o.cache.Load()
		e, err := s.entry(c, userID)
		if err != nil {
			return runtime.Profile{}, err
		}
		v := e.cur.Load()
		if authz.PatchIsNoop(v.p, appMetadata, userMetadata) {
			return s.acknowledge(ctx, v)
		}
		o.gen.RLock()
		if o.cache.Load() != c { // an import swapped the generation: start over
			o.gen.RUnlock()
			continue
		}
		v, err = s.patchEntry(e, userID, appMetadata, userMetadata, o.j)
		o.gen.RUnlock()
		if err != nil {
			return runtime.Profile{}, err
		}
		return s.acknowledge(ctx, v)
	}
}

// patchEntry merges under the entry's lock and enqueues a changed result.
func (s *Store) patchEntry(e *profEntry, userID string, appMetadata, userMetadata map[string]any, j *journal) (*profVersion, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.cur.Load()
	next, err := authz.MergeProfile(v.p, userID, appMetadata, userMetadata, s.opt.ProfileLimit)
	if err != nil {
		return nil, err
	}
	if v.enc == nil && authz.NothingToKeep(next) {
		return v, nil // nothing to keep: no file for a user who has nothing
	}
	enc, err := json.Marshal(profileFile(next))
	if err != nil {
		return nil, &runtime.ValidationError{Entity: "profile", ID: userID, Reason: "is not JSON: " + err.Error()}
	}
	if v.enc != nil && sameBytes(enc, v.enc) {
		return v, nil
	}
	// The cached form is the decoded one, so reads return what a read of
	// the file would (numbers as float64, arrays as []any).
	canon, err := decodeProfileFile(userID, "encoded profile", enc)
	if err != nil {
		return nil, err
	}
	b, err := j.enqueue(userID, enc)
	if err != nil {
		return nil, err
	}
	nv := &profVersion{p: canon, enc: enc, batch: b}
	e.cur.Store(nv)
	return nv, nil
}

// acknowledge returns v once the durability mode allows: in sync mode
// after its commit is on disk.
func (s *Store) acknowledge(ctx context.Context, v *profVersion) (runtime.Profile, error) {
	if b := v.batch; b != nil && s.opt.Durability != DurabilityRelaxed {
		select {
		case <-b.done:
			if b.err != nil {
				return runtime.Profile{}, b.err
			}
		case <-ctx.Done():
			return runtime.Profile{}, ctx.Err()
		}
	}
	return clonedProfile(v.p), nil
}

// Flush waits until every patch acknowledged so far is durable (relaxed
// mode; in sync mode they already are).
func (s *Store) Flush(ctx context.Context) error {
	o := s.own.Load()
	if o == nil {
		return nil
	}
	b := o.j.flushed()
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// beginImport stops changing patches and waits for the journal, before an
// import replaces the profile generation; end (holding the exclusive
// directory lock, after HEAD names gen, or with gen "" when the import
// failed) points the cache and the journal at it and lets patches go on.
func (o *owner) beginImport() (end func(s *Store, gen string)) {
	o.gen.Lock()
	if b := o.j.flushed(); b != nil {
		<-b.done
	}
	return func(s *Store, gen string) {
		if gen != "" {
			dir := s.path(gen)
			o.j.switchDir(dir)
			o.cache.Store(&profCache{dir: dir})
		}
		o.gen.Unlock()
	}
}

// writeProfileGeneration writes an imported profile set into a new
// generation directory and makes it durable before HEAD may name it.
func (s *Store) writeProfileGeneration(gen string, recs []authz.ProfileRecord) error {
	dir := s.path(gen)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("profiles %s: %w", dir, err)
	}
	for _, r := range recs {
		p := authz.ProfileFromRecord(r)
		if err := authz.CheckProfile(p, s.opt.ProfileLimit); err != nil {
			return err
		}
	}
	for _, r := range recs {
		b, err := json.Marshal(profileFile(authz.ProfileFromRecord(r)))
		if err != nil {
			return fmt.Errorf("profile of user %q: %w", r.UserID, err)
		}
		if err := writeProfileFile(dir, r.UserID, b, &s.io); err != nil {
			return err
		}
	}
	// One file-system sync instead of an fsync per file and directory.
	s.io.sync(1)
	return fsx.SyncTree(dir)
}

// ListProfiles implements authz.ProfileLister: the files overlaid with the
// journal (the owner first waits for its pending commits, so relaxed-mode
// patches it acknowledged are included).
func (s *Store) ListProfiles(ctx context.Context, fn func(runtime.Profile) error) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	var all []runtime.Profile
	err := s.withLock(ctx, false, func() error {
		h, _, err := s.readHead()
		if err != nil {
			return err
		}
		root := s.path(h.Profiles)
		latest, _, err := readJournal(root, &s.io)
		if err != nil {
			return err
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return filepath.SkipDir
			}
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".json") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var pf profileFile
			if err := json.Unmarshal(b, &pf); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if _, ok := latest[pf.UserID]; ok {
				return nil // the journal's record is newer
			}
			all = append(all, authz.ProfileFromRecord(authz.ProfileRecord{UserID: pf.UserID, AppMetadata: pf.AppMetadata, UserMetadata: pf.UserMetadata}))
			return ctx.Err()
		})
		if err != nil {
			return err
		}
		for u, enc := range latest {
			p, err := decodeProfileFile(u, "profile journal", enc)
			if err != nil {
				return err
			}
			all = append(all, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range all {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}
