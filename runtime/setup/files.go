package setup

import (
	"io"
	"io/fs"

	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
)

// WriteFileAtomic replaces path with r's bytes so that a crash or a failed
// read leaves either the old file or the new one, never a torn one (temp
// file, fsync, rename, fsync of the directory). It is the one atomic write
// the command line reaches (export), through the same helper the file
// backends use; package main cannot import runtime/internal.
func WriteFileAtomic(path string, r io.Reader, perm fs.FileMode) error {
	return fsx.WriteFileAtomicFrom(path, r, perm)
}
