//go:build !unix

package fsx

import (
	"errors"
	"os"
)

// Without flock, locks only open their file: each store still serialises
// its own writers with a mutex, but separate processes are not excluded.
// claimsmith's supported platforms are unix.
var errWouldBlock = errors.New("would block")

func flock(*os.File, bool, bool) error { return nil }

func funlock(*os.File) error { return nil }
