// Package hooks is claimsmith's HTTP surface: one small handler type per
// endpoint and per IdP dialect, and the one place (errors.go) that turns
// errors into HTTP responses. Handlers depend on tiny interfaces declared
// here, never on concrete backends; cmd wires them.
package hooks
