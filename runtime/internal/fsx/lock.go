package fsx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrLocked is a lock held by someone else (TryLock, WaitLock).
var ErrLocked = errors.New("locked by another holder")

// LockedError is a TryLock that found the lock taken. Holder is the note the
// holder wrote into the lock file (SetNote), possibly empty.
type LockedError struct {
	Path   string
	Holder []byte
}

func (e *LockedError) Error() string { return fmt.Sprintf("lock %s: %v", e.Path, ErrLocked) }

// Is reports ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held flock on a file. flock locks belong to the open file
// description, so two Locks on one path exclude each other inside one
// process exactly as they do across processes, and the kernel drops the lock
// when its holder dies: a crash never leaves a path locked.
type Lock struct {
	f     *os.File
	noted bool
}

func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// LockFile takes a flock on path (created if missing), exclusive or shared,
// waiting as long as it takes: for short critical sections (one commit),
// where the wait is bounded by the holder's work.
func LockFile(ctx context.Context, path string, exclusive bool) (*Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	if err := flock(f, exclusive, true); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// WithLock runs fn holding a flock on path.
func WithLock(ctx context.Context, path string, exclusive bool, fn func() error) error {
	l, err := LockFile(ctx, path, exclusive)
	if err != nil {
		return err
	}
	defer l.Unlock() //nolint:errcheck // closing releases it anyway
	return fn()
}

// TryLock takes an exclusive flock on path without waiting. A lock held by
// someone else is a *LockedError carrying the holder's note.
func TryLock(path string) (*Lock, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	err = flock(f, true, false)
	if errors.Is(err, errWouldBlock) {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		return nil, &LockedError{Path: path, Holder: b}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// WaitLock takes an exclusive flock on path, polling every poll (0: 50 ms)
// while another holder has it, until ctx ends or giveUp (nil: never)
// returns true for the holder's note. A blocking flock(2) cannot be
// cancelled, hence the polling. The last *LockedError is returned on
// giving up, ctx.Err() on cancellation.
func WaitLock(ctx context.Context, path string, poll time.Duration, giveUp func(holder []byte) bool) (*Lock, error) {
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		l, err := TryLock(path)
		var le *LockedError
		if !errors.As(err, &le) {
			return l, err
		}
		if giveUp != nil && giveUp(le.Holder) {
			return nil, err
		}
		t.Reset(poll)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// SetNote records who holds the lock (best effort: the flock, not the
// text, is what excludes) for the message of whoever finds it taken.
// Unlock clears it.
func (l *Lock) SetNote(note []byte) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	l.noted = true
	_, err := l.f.WriteAt(note, 0)
	return err
}

// Unlock releases the lock and closes its file.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	if l.noted {
		_ = l.f.Truncate(0)
	}
	err := funlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
