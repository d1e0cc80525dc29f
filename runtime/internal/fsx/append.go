package fsx

import (
	"fmt"
	"os"
)

// AppendSync appends one record b to f (opened with O_APPEND) whose length
// before the append is size, and makes it durable before returning: the
// shape every append-only log here shares (audit log, revocation list).
// On any error the file is cut back to size, so the log holds exactly the
// records whose append returned nil, the caller's length stays right, and
// the next record never glues onto a partial one (disk full). Only the
// data and the length have to reach the disk for a record to be read back,
// hence DataSync rather than a full fsync.
func AppendSync(f *os.File, b []byte, size int64) error {
	_, err := f.Write(b)
	if err == nil {
		err = DataSync(f)
	}
	if err != nil {
		_ = f.Truncate(size)
		return fmt.Errorf("append %s: %w", f.Name(), err)
	}
	return nil
}
