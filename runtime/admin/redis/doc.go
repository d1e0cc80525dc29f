// Package redis keeps admin keys and the audit log in Redis, beside the
// redis authorization store, so every node of a deployment shares them. It
// passes runtime/admin/admintest.
package redis
