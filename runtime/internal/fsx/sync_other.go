//go:build !linux

package fsx

import (
	"io/fs"
	"os"
	"path/filepath"
)

// SyncTree fsyncs every file and directory under dir (no syncfs here).
func SyncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return SyncDir(path)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		serr := f.Sync()
		_ = f.Close()
		return serr
	})
}

// DataSync makes f's data durable (fsync where fdatasync is not offered).
func DataSync(f *os.File) error { return f.Sync() }
