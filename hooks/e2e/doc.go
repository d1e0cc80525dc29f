// Package e2e holds claimsmith's end-to-end tests and nothing else: a real
// Ory Hydra calling the Hydra dialect (alone, and in front of the whole
// server), the Auth0 Action sample under node against the native trigger,
// and the whole server as `claimsmith serve` builds it (runtime/setup, in
// process) serving and reloading its configuration. `go test -short` skips
// the slow ones; the per-package tests live beside the code.
package e2e
