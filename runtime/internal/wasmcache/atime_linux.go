package wasmcache

import (
	"io/fs"
	"syscall"
	"time"
)

// lastUse is a file's access or modification time, whichever is later.
func lastUse(info fs.FileInfo) time.Time {
	t := info.ModTime()
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		if a := time.Unix(st.Atim.Sec, st.Atim.Nsec); a.After(t) {
			return a
		}
	}
	return t
}
