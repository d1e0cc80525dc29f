package file

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
)

// The profile journal: the owner appends every changed profile to
// profiles-K/journal-<n> and makes a whole batch of them durable with one
// fdatasync (group commit); the per-user files are rewritten from it only at
// a checkpoint, with one syncfs for all of them: in the background when a
// segment passes CheckpointBytes (the segment is sealed and new records go
// to the next one), inline at Close and at the next owner's start. An
// import starts a new generation with an empty journal. A crash loses at most the
// batch being written, whose patches were not acknowledged (sync mode); the
// next owner replays the journal into the files before serving.
//
// A record is: uint32 length of the rest, uint32 CRC-32C of the rest,
// uvarint length of the user id, the user id, the profile file's JSON. A
// torn or damaged record ends its segment (it was never acknowledged).

const journalPrefix = "journal-"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func appendRecord(buf []byte, userID string, enc []byte) []byte {
	var hdr [8]byte
	start := len(buf)
	buf = append(buf, hdr[:]...)
	buf = binary.AppendUvarint(buf, uint64(len(userID)))
	buf = append(buf, userID...)
	buf = append(buf, enc...)
	body := buf[start+8:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, crcTable))
	return buf
}

// scanRecords calls fn for each intact record of b in order and reports
// whether b ended in a torn or damaged record.
func scanRecords(b []byte, fn func(userID string, enc []byte)) (torn bool) {
	for len(b) > 0 {
		if len(b) < 8 {
			return true
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-8) {
			return true
		}
		body := b[8 : 8+n]
		if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
			return true
		}
		ul, k := binary.Uvarint(body)
		if k <= 0 || uint64(len(body)-k) < ul {
			return true
		}
		fn(string(body[k:k+int(ul)]), body[k+int(ul):])
		b = b[8+n:]
	}
	return false
}

// segments lists the journal segments of a generation directory in order.
func segments(genDir string) ([]string, error) {
	ents, err := os.ReadDir(genDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasPrefix(e.Name(), journalPrefix) && !fsx.IsTemp(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmpInt(segNumber(a), segNumber(b)) })
	return out, nil
}

func segNumber(name string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimPrefix(name, journalPrefix), 10, 64)
	return n
}

func cmpInt(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readJournal returns the latest journalled profile per user of a
// generation. A segment removed while it is read was checkpointed: its
// records are in the files.
func readJournal(genDir string, io *ioCounter) (latest map[string][]byte, torn []string, err error) {
	segs, err := segments(genDir)
	io.op(1)
	if err != nil {
		return nil, nil, err
	}
	latest = map[string][]byte{}
	for _, name := range segs {
		b, err := os.ReadFile(filepath.Join(genDir, name))
		io.op(1)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if scanRecords(b, func(u string, enc []byte) { latest[u] = enc }) {
			torn = append(torn, name)
		}
	}
	return latest, torn, nil
}

// batch is one group commit: every patch enqueued while it collects shares
// its fdatasync, and waits on done.
type batch struct {
	done chan struct{}
	err  error
}

type pendingRec struct {
	userID string
	enc    []byte
}

// journal is the owner's writer: enqueue from any goroutine, one committer
// goroutine writing and syncing.
type journal struct {
	s      *Store
	window time.Duration
	limit  int64

	mu   sync.Mutex // guards the fields up to err
	buf  []byte
	recs []pendingRec
	cur  *batch // collecting; nil when nothing is pending
	last *batch // most recently enqueued (flush waits on it)
	err  error  // sticky: a failed write or sync stops all later writes

	kick   chan struct{}
	urgent chan struct{} // Flush: commit now, do not wait for the window
	quit   chan struct{}
	exited chan struct{}
	// hold is taken by the committer before each batch; tests hold it to
	// let a known number of patches queue up behind one commit.
	hold sync.Mutex

	wmu     sync.Mutex // held by the committer while writing; guards the rest
	dir     string     // the generation directory
	seg     *os.File
	segNo   uint64
	segSize int64
	dirty   map[string][]byte // latest record per user since the last checkpoint

	// ck is held (a one-slot semaphore) while a checkpoint runs in the
	// background, so logins do not wait for thousands of file writes.
	ck chan struct{}
}

func newJournal(s *Store, genDir string, nextSeg uint64) *journal {
	j := &journal{
		s: s, window: s.opt.CommitWindow, limit: s.opt.CheckpointBytes,
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1), quit: make(chan struct{}), exited: make(chan struct{}),
		dir: genDir, segNo: nextSeg, dirty: map[string][]byte{}, ck: make(chan struct{}, 1),
	}
	go j.run()
	return j
}

// enqueue adds a changed profile to the collecting batch and returns it.
func (j *journal) enqueue(userID string, enc []byte) (*batch, error) {
	j.mu.Lock()
	if j.err != nil {
		err := j.err
		j.mu.Unlock()
		return nil, err
	}
	j.buf = appendRecord(j.buf, userID, enc)
	j.recs = append(j.recs, pendingRec{userID, enc})
	if j.cur == nil {
		j.cur = &batch{done: make(chan struct{})}
	}
	b := j.cur
	j.last = b
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return b, nil
}

// pending is the number of enqueued records not yet taken by the committer.
func (j *journal) pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.recs)
}

// flushed returns the batch to wait for so that everything enqueued so far
// is durable (nil: nothing outstanding), and asks the committer not to wait
// for the rest of its window.
func (j *journal) flushed() *batch {
	j.mu.Lock()
	b := j.last
	j.mu.Unlock()
	select {
	case j.urgent <- struct{}{}:
	default:
	}
	return b
}

func (j *journal) run() {
	defer close(j.exited)
	var timer *time.Timer
	for {
		select {
		case <-j.kick:
		case <-j.quit:
			j.commit()
			j.wmu.Lock()
			if err := j.checkpoint(); err != nil {
				j.s.log.Error("file store: checkpoint of the profile journal at close failed; the next start replays it", "err", err)
			}
			j.closeSeg()
			j.wmu.Unlock()
			return
		}
		if j.window > 0 {
			// Let the batch collect: in relaxed mode this is the window an
			// acknowledged patch may stay volatile.
			if timer == nil {
				timer = time.NewTimer(j.window)
			} else {
				timer.Reset(j.window)
			}
			select {
			case <-timer.C:
			case <-j.urgent:
				timer.Stop() // Go ≥ 1.23: no stale tick can be left behind
			case <-j.quit:
				timer.Stop()
				select {
				case j.kick <- struct{}{}:
				default:
				}
				continue // the quit branch above commits and stops
			}
		}
		j.commit()
	}
}

// commit writes and syncs the collected batch, then wakes its waiters.
func (j *journal) commit() {
	j.hold.Lock()
	j.hold.Unlock() //nolint:staticcheck // an empty critical section: only waits for a test's hold
	j.mu.Lock()
	buf, recs, b := j.buf, j.recs, j.cur
	j.buf, j.recs, j.cur = nil, nil, nil
	j.mu.Unlock()
	if b == nil {
		return
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	err := j.write(buf)
	if err != nil {
		b.err = j.fail(err)
		close(b.done)
		return
	}
	for _, r := range recs {
		j.dirty[r.userID] = r.enc
	}
	close(b.done) // durable: the waiters go on
	if j.segSize >= j.limit {
		select {
		case j.ck <- struct{}{}:
			// Seal the segment and checkpoint it in the background; new
			// records go to the next segment. A crash before the sealed
			// segments are dropped replays them, in order, before the
			// newer ones.
			snap, dir, upto := j.dirty, j.dir, j.segNo
			j.dirty = map[string][]byte{}
			j.closeSeg()
			j.segNo++
			go func() {
				defer func() { <-j.ck }()
				if err := j.s.writeCheckpoint(dir, snap, upto); err != nil {
					j.fail(err)
				}
			}()
		default: // the previous checkpoint still runs: keep appending
		}
	}
}

// writeCheckpoint writes the latest record of each user in dirty to its
// file, makes them durable with one tree sync, then drops the segments
// numbered up to upto (or all, with upto ^0).
func (s *Store) writeCheckpoint(dir string, dirty map[string][]byte, upto uint64) error {
	if len(dirty) > 0 {
		for u, enc := range dirty {
			if err := writeProfileFile(dir, u, enc, &s.io); err != nil {
				return err
			}
		}
		s.io.sync(1)
		if err := fsx.SyncTree(dir); err != nil {
			return err
		}
	}
	segs, err := segments(dir)
	if err != nil {
		return err
	}
	for _, name := range segs {
		if segNumber(name) > upto {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		s.io.op(1)
	}
	return nil
}

// fail makes an I/O error sticky: after a failed write or sync the state of
// the file is unknown (a retried fsync may report success for lost data),
// so later writes are refused until the store is reopened and replays the
// journal.
func (j *journal) fail(err error) error {
	err = fmt.Errorf("profile journal in %s: %w", j.dir, err)
	j.s.log.Error("file store: profile writes stop until the store is reopened", "err", err)
	j.mu.Lock()
	j.err = err
	j.mu.Unlock()
	return err
}

// write appends buf to the current segment (opening one if needed) and
// fdatasyncs it: the one sync of the batch. Call with wmu held.
func (j *journal) write(buf []byte) error {
	if j.seg == nil {
		if err := os.MkdirAll(j.dir, dirPerm); err != nil {
			return err
		}
		j.s.io.op(1)
		name := filepath.Join(j.dir, fmt.Sprintf("%s%020d", journalPrefix, j.segNo))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, filePerm)
		j.s.io.op(1)
		if err != nil {
			return err
		}
		// The segment's directory entry (and a new generation directory's)
		// must be durable before any of its records is acknowledged.
		j.s.io.op(2)
		j.s.io.sync(2)
		if err := errors.Join(fsx.SyncDir(j.dir), fsx.SyncDir(filepath.Dir(j.dir))); err != nil {
			_ = f.Close()
			return err
		}
		j.seg, j.segSize = f, 0
	}
	_, err := j.seg.Write(buf)
	j.s.io.op(1)
	if err != nil {
		return err
	}
	j.segSize += int64(len(buf))
	j.s.io.sync(1)
	return fsx.DataSync(j.seg)
}

func (j *journal) closeSeg() {
	if j.seg != nil {
		_ = j.seg.Close()
		j.seg = nil
	}
}

// checkpoint writes everything journalled into the files and drops every
// segment (Close), after any background checkpoint finished. Call with wmu
// held.
func (j *journal) checkpoint() error {
	j.ck <- struct{}{}
	defer func() { <-j.ck }()
	j.closeSeg()
	if err := j.s.writeCheckpoint(j.dir, j.dirty, ^uint64(0)); err != nil {
		return err
	}
	clear(j.dirty)
	j.segNo++
	return nil
}

// switchDir points the journal at a new generation (after an import
// committed it). The caller has stopped enqueues and waited for the last
// batch: the old generation's journal is discarded with its directory.
func (j *journal) switchDir(genDir string) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.ck <- struct{}{} // a background checkpoint writes into the old directory
	defer func() { <-j.ck }()
	j.closeSeg()
	j.dir, j.segNo = genDir, 0
	clear(j.dirty)
}

// stop commits what is pending, checkpoints and stops the committer.
func (j *journal) stop() error {
	close(j.quit)
	<-j.exited
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// recoverGeneration is what a new owner does before serving: remove the
// temp files of writers killed mid-write, replay the journal into the
// files, make them durable, drop the journal. It returns the number of the
// next segment.
func (s *Store) recoverGeneration(genDir string) (uint64, error) {
	removed, err := fsx.RemoveTemps(genDir)
	if err != nil {
		return 0, fmt.Errorf("clean %s: %w", genDir, err)
	}
	for _, p := range removed {
		s.log.Info("file store: removed leftover of an interrupted profile write", "path", p)
	}
	latest, torn, err := readJournal(genDir, &s.io)
	if err != nil {
		return 0, fmt.Errorf("replay the profile journal in %s: %w", genDir, err)
	}
	for _, name := range torn {
		s.log.Warn("file store: the profile journal ends in an incomplete record (a batch interrupted before it was acknowledged); ignored", "segment", filepath.Join(genDir, name))
	}
	segs, err := segments(genDir)
	if err != nil {
		return 0, err
	}
	if len(latest) > 0 {
		for u, enc := range latest {
			if err := writeProfileFile(genDir, u, enc, &s.io); err != nil {
				return 0, err
			}
		}
		s.io.sync(1)
		if err := fsx.SyncTree(genDir); err != nil {
			return 0, err
		}
		s.log.Info("file store: replayed the profile journal", "dir", genDir, "profiles", len(latest))
	}
	var next uint64
	for _, name := range segs {
		if err := os.Remove(filepath.Join(genDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
		if n := segNumber(name); n >= next {
			next = n + 1
		}
	}
	return next, nil
}

// writeProfileFile replaces one user's file without a sync (the journal
// holds the record until a tree sync made the file durable).
func writeProfileFile(genDir, userID string, enc []byte, io *ioCounter) error {
	path := filepath.Join(genDir, profileRel(userID))
	err := fsx.ReplaceFileNoSync(path, enc, filePerm)
	io.op(5)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
			return fmt.Errorf("profile of user %q: %w", userID, err)
		}
		io.op(1)
		err = fsx.ReplaceFileNoSync(path, enc, filePerm)
		io.op(5)
	}
	if err != nil {
		return fmt.Errorf("profile of user %q: %w", userID, err)
	}
	return nil
}

// sameBytes is bytes.Equal, named for what it decides here.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
