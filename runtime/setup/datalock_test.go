package setup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDataDirLock: a CLI command waits for another briefly, a server waits
// for a command, and a command is refused at once while a server holds the
// data dir, naming it.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	release, err := LockDataDirForCommand(ctx, dir, "test one")
	if err != nil {
		t.Fatal(err)
	}
	// Another command waits, then gives up naming the holder.
	start := time.Now()
	_, err = lockDataDir(ctx, dir, LockOwner{Role: "cli", Command: "test two"}, 200*time.Millisecond)
	var busy *DataDirBusyError
	if !errors.As(err, &busy) || busy.Owner.Command != "test one" || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("second command: %v", err)
	}
	// A server waits for the command to finish.
	go func() { time.Sleep(100 * time.Millisecond); release() }()
	rs, err := LockDataDirForServer(ctx, dir, "127.0.0.1:1")
	if err != nil {
		t.Fatalf("server after the command: %v", err)
	}
	// With a server holding it, a command is refused without waiting:
	// told to wait an hour for another command, it still answers before
	// its context ends (a minute, so that a wait fails instead of hanging;
	// no wall-clock margin a loaded machine could miss).
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = lockDataDir(lctx, dir, LockOwner{Role: "cli", Command: "late"}, time.Hour)
	if !errors.As(err, &busy) || busy.Owner.Role != "server" || busy.Owner.Addr != "127.0.0.1:1" || lctx.Err() != nil {
		t.Fatalf("command while served: %v (context: %v)", err, lctx.Err())
	}
	_, err = LockDataDirForCommand(ctx, dir, "late")
	if !errors.As(err, &busy) || busy.Owner.Role != "server" {
		t.Fatalf("command while served: %v", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("message lacks the pid: %v", err)
	}
	rs()
	r3, err := LockDataDirForCommand(ctx, dir, "after")
	if err != nil {
		t.Fatal(err)
	}
	r3()
}
