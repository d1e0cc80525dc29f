// Package e2e holds claimsmith's end-to-end tests and nothing else: a real
// Ory Hydra calling the Hydra dialect, the Auth0 Action sample under node
// against the native trigger, and the claimsmith binary serving and
// reloading its configuration. They are slow (`go test -short` skips the
// ones that build binaries); the per-package tests live beside the code.
package e2e
