// Package file keeps admin keys and the audit log in the data dir
// (<data dir>/admin): keys.json written atomically under an flock, the
// audit log as fsynced JSON lines, so a server and the CLI working on one
// data dir share them. It passes runtime/admin/admintest.
package file
