//go:build !linux

package file

import (
	"io/fs"
	"path/filepath"

	"github.com/claimsmith/claimsmith/runtime"
)

func writeProfileNoSync(dir string, p runtime.Profile) error { return writeProfile(dir, p, true) }

// syncTree fsyncs every directory under dir (files were synced as written).
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncPath(path)
	})
}
