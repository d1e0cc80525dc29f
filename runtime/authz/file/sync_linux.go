package file

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/claimsmith/claimsmith/runtime"
)

// writeProfileNoSync skips the per-directory fsync: syncTree follows.
func writeProfileNoSync(dir string, p runtime.Profile) error { return writeProfile(dir, p, false) }

// syncTree makes everything written under dir durable with one syncfs(2).
func syncTree(dir string) error {
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
