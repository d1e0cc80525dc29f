// Package fsx holds the file-system primitives every file backend shares:
// crash-safe replacement of a file (temp file, fsync, rename, fsync of the
// directory), creation that never clobbers, directory syncs, and advisory
// flock locks — a short per-operation lock, a non-blocking try with a note
// naming the holder, and a context-aware wait for one.
package fsx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tmpMark names temp files "<base>.tmp-<random>" beside their target, so a
// directory scan can tell them apart (IsTemp) and remove what a crash left.
const tmpMark = ".tmp"

// IsTemp reports whether name (a base name) is a temp file of this package
// or of the older fixed "<name>.tmp" convention.
func IsTemp(name string) bool {
	return strings.HasSuffix(name, tmpMark) || strings.Contains(name, tmpMark+"-")
}

// writeTemp writes r's bytes to a new temp file beside path; sync fsyncs
// it. It returns the temp file's name; on error nothing is left behind.
func writeTemp(path string, r io.Reader, perm fs.FileMode, sync bool) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+tmpMark+"-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = io.Copy(f, r)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old or the new content, never a torn file: write a temp file in the same
// directory, fsync it, rename it over path, fsync the directory (so the
// rename itself survives a crash).
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return WriteFileAtomicFrom(path, bytes.NewReader(data), perm)
}

// WriteFileAtomicFrom is WriteFileAtomic for content produced by a reader
// (an export streamed through a progress bar). On error path is untouched
// and no temp file is left.
func WriteFileAtomicFrom(path string, r io.Reader, perm fs.FileMode) error {
	tmp, err := writeTemp(path, r, perm, true)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// ReplaceFileNoSync replaces path with data through a temp file and a
// rename but syncs nothing: a reader never sees a torn file, and the caller
// makes the result durable later (SyncTree, or a journal that is replayed
// after a crash rewrites it).
func ReplaceFileNoSync(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, bytes.NewReader(data), perm, false)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CreateFileExclusive writes data to path only if path does not exist yet:
// temp file, fsync, link (unlike rename, link fails on an existing target,
// so two processes creating at once cannot clobber each other), fsync of
// the directory. An existing path is an error matching fs.ErrExist.
func CreateFileExclusive(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, bytes.NewReader(data), perm, true)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory so entries created, renamed or removed in it
// are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// RemoveTemps removes the temp files (IsTemp) under root, recursively, and
// returns their paths: the debris of writers killed between write and
// rename. Call it only while no writer of root can be running.
func RemoveTemps(root string) ([]string, error) {
	var removed []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !IsTemp(d.Name()) {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed = append(removed, path)
		return nil
	})
	return removed, err
}
