package fsx

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	for _, want := range []string{"one", "two"} {
		if err := WriteFileAtomic(p, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestCreateFileExclusiveNeverClobbers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.json")
	if err := CreateFileExclusive(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CreateFileExclusive(p, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Fatalf("clobbered: %q", b)
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	files := map[string]bool{"a/x.json": false, "a/x.json.tmp-123": true, "b/c/y.json.tmp": true, "HEAD": false}
	for name := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveTemps(dir)
	if err != nil || len(removed) != 2 {
		t.Fatalf("removed %q, %v", removed, err)
	}
	for name, temp := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := errors.Is(err, fs.ErrNotExist); gone != temp {
			t.Errorf("%s: gone=%v, temp=%v", name, gone, temp)
		}
	}
	if removed, err := RemoveTemps(filepath.Join(dir, "missing")); err != nil || len(removed) != 0 {
		t.Fatalf("missing root: %q, %v", removed, err)
	}
}

func TestTryLockReportsHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "owner.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetNote([]byte(`{"pid":42}`)); err != nil {
		t.Fatal(err)
	}
	_, err = TryLock(p)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || string(le.Holder) != `{"pid":42}` {
		t.Fatalf("second TryLock: %v (holder %q)", err, le)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := TryLock(p)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	if b, _ := os.ReadFile(p); len(b) != 0 {
		t.Fatalf("note not cleared on unlock: %q", b)
	}
	_ = l2.Unlock()
}

func TestWaitLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "owner.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	_ = l.SetNote([]byte("server"))
	// giveUp sees the holder's note.
	if _, err := WaitLock(context.Background(), p, time.Millisecond, func(h []byte) bool { return string(h) == "server" }); !errors.Is(err, ErrLocked) {
		t.Fatalf("giveUp: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WaitLock(ctx, p, time.Millisecond, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// Released while waiting: the waiter gets it.
	got := make(chan error, 1)
	go func() {
		l2, err := WaitLock(context.Background(), p, time.Millisecond, nil)
		if err == nil {
			err = l2.Unlock()
		}
		got <- err
	}()
	_ = l.Unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestSharedAndExclusiveLocks(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "lock")
	a, err := LockFile(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LockFile(ctx, p, false)
	if err != nil {
		t.Fatal("two shared locks must coexist:", err)
	}
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("exclusive try under shared locks: %v", err)
	}
	_ = a.Unlock()
	_ = b.Unlock()
	ran := false
	if err := WithLock(ctx, p, true, func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatal(err)
	}
}

func TestAppendSync(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log.jsonl")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := AppendSync(f, []byte("a\n"), 0); err != nil {
		t.Fatal(err)
	}
	if err := AppendSync(f, []byte("b\n"), 2); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "a\nb\n" {
		t.Fatalf("got %q", b)
	}
	// A failed append (here: a read-only handle) leaves the log as it was.
	ro, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := AppendSync(ro, []byte("c\n"), 4); err == nil {
		t.Fatal("append through a read-only handle succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "a\nb\n" {
		t.Fatalf("after a failed append: %q", b)
	}
}

func TestWriteFileAtomicFrom(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "export.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomicFrom(p, strings.NewReader("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("got %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// A reader that fails leaves the old file and no temp file.
	if err := WriteFileAtomicFrom(p, iotest.ErrReader(errors.New("boom")), 0o600); err == nil {
		t.Fatal("failing reader: no error")
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("after a failed write: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}
