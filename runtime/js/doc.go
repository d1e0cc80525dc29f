// Package js runs Auth0 Rules and Actions written in JavaScript as pipeline
// rules (`js: path/to/rule.js` in the config), inside the same WebAssembly
// sandbox as every .wasm rule.
//
// The engine is goja (github.com/dop251/goja) compiled into an extism guest
// (engine/, a wasip1 main package). The built module is committed
// compressed (engine.wasm.gz) and embedded, so a plain `go build
// ./cmd/claimsmith` has JavaScript support; TestEngineArtifactIsCurrent
// rebuilds it and fails on drift. It is built reproducibly with -trimpath by
// the Go toolchain named in go.mod (`make js-engine`): the same Go version
// produces the same bytes.
//
// An Engine loads that module once through runtime/wasm — the call timeout,
// the memory cap, the stop flag, discard-and-replace, no file system and no
// network all apply unchanged — and every JavaScript rule of the pipeline
// shares its pool of instances: an instance asks the host for a rule's
// source the first time it runs it and keeps the compiled program, so
// memory grows with the pool (cores), not with the number of rules. Rules
// with a different `memory` setting get their own engine pool.
//
// goja's own Interrupt never fires inside wasip1 (nothing preempts the
// guest); the host's stop flag is what ends a runaway script.
//
// A call's cost is mostly goja's, inside the sandbox (Go compiled to
// WebAssembly runs some twelve times slower than natively), so the engine
// does as little of it as it can: the host shapes the event for the rule's
// style (event.go), the guest reads its input in one pass that also indexes
// an Action's event, leaves the event's objects as JSON until the script
// reads them (engine/guest/event.go), and runs the api itself in Go
// (engine/guest/api.go: what a rule asks for goes straight into the call's
// commands, serialised once), so an Action's handler is the only
// JavaScript a call runs; the handler's promise is read from Go. The
// guest's collector runs at GOGC 200 (Options.GuestGCPercent) with a
// memory limit of three quarters of the instance's cap. engine/guest has
// no build constraint: its benchmarks and profiles run natively, and its
// TestSemantics pins what scripts see byte for byte.
//
// api.cache (cache.go) is a Cache: in-process (MemoryCache) or in Redis
// (RedisCache), shared by every engine instance and every node using it.
package js
