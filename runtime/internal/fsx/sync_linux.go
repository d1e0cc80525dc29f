package fsx

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SyncTree makes everything written under dir (files and directory
// entries) durable with one syncfs(2) of its file system, instead of an
// fsync per file and directory.
func SyncTree(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// DataSync makes f's data (and the size needed to read it back) durable
// with fdatasync(2), skipping the metadata a journal append does not need.
func DataSync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
