package setup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
)

// The data dir's owner lock. The file store itself is safe for several
// processes (it flocks around each commit), but an operator changing the
// data dir of a running server behind its back bypasses the server's API:
// no admin key, no audit record, no If-Match. So `serve` holds an exclusive
// flock on DIR/owner.lock for its lifetime, and CLI commands that write the
// data dir directly take the same lock for the length of the command: with
// a server running they refuse and point at --server; a server starting
// while a CLI write is in progress waits for it. The kernel drops the lock
// when the holder dies, so a crash never leaves the data dir locked.

const ownerLockName = "owner.lock"

// LockOwner is what the holder writes into the lock file, for the message
// of whoever finds it taken.
type LockOwner struct {
	Role    string    `json:"role"` // "server" or "cli"
	PID     int       `json:"pid"`
	Addr    string    `json:"addr,omitempty"`
	Command string    `json:"command,omitempty"`
	Since   time.Time `json:"since"`
}

// DataDirBusyError is a data dir owned by another process.
type DataDirBusyError struct {
	Dir   string
	Owner LockOwner
}

func (e *DataDirBusyError) Error() string {
	o := e.Owner
	if o.Role == "server" {
		where := ""
		if o.Addr != "" {
			where = " on " + o.Addr
		}
		return fmt.Sprintf("data dir %s is owned by a running claimsmith server (pid %d%s, since %s): "+
			"change it through the server's admin API with --server URL --key KEY (or stop the server)",
			e.Dir, o.PID, where, o.Since.Format(time.RFC3339))
	}
	return fmt.Sprintf("data dir %s is locked by another claimsmith command (pid %d, %s, since %s)",
		e.Dir, o.PID, o.Command, o.Since.Format(time.RFC3339))
}

// lockDataDir takes the owner lock, waiting up to wait while another holder
// has it (a server waits for a CLI command to finish; a CLI command waits
// briefly for another command) but never waiting for a server: a data dir
// owned by a server is refused at once (a second server included).
func lockDataDir(ctx context.Context, dir string, me LockOwner, wait time.Duration) (func(), error) {
	if me.PID == 0 {
		me.PID = os.Getpid()
	}
	if me.Since.IsZero() {
		me.Since = time.Now().UTC().Truncate(time.Second)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	var owner LockOwner
	l, err := fsx.WaitLock(ctx, filepath.Join(dir, ownerLockName), 0, func(holder []byte) bool {
		owner = LockOwner{}
		_ = json.Unmarshal(holder, &owner)
		return owner.Role == "server" || time.Now().After(deadline)
	})
	if errors.Is(err, fsx.ErrLocked) {
		return nil, &DataDirBusyError{Dir: dir, Owner: owner}
	}
	if err != nil {
		return nil, fmt.Errorf("owner lock: %w", err)
	}
	// Record who holds it (best effort: the lock, not the text, is what counts).
	b, _ := json.Marshal(me)
	_ = l.SetNote(append(b, '\n'))
	return func() { _ = l.Unlock() }, nil
}

// LockDataDirForServer is what `serve` calls before it opens the store.
func LockDataDirForServer(ctx context.Context, dir, addr string) (func(), error) {
	return lockDataDir(ctx, dir, LockOwner{Role: "server", Addr: addr}, 30*time.Second)
}

// LockDataDirForCommand is what a CLI command that writes the data dir
// directly calls.
func LockDataDirForCommand(ctx context.Context, dir, command string) (func(), error) {
	return lockDataDir(ctx, dir, LockOwner{Role: "cli", Command: command}, 5*time.Second)
}
