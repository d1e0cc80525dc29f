//go:build !linux

package wasmcache

import (
	"io/fs"
	"time"
)

// lastUse is a file's modification time (access times are not read here:
// a module wazero only reads counts as used when it was written).
func lastUse(info fs.FileInfo) time.Time { return info.ModTime() }
