// Package wasm runs user rules compiled to WebAssembly: extism plugins that
// read the login event as JSON (export on_login, or on_credentials_exchange
// for machine-to-machine tokens) and answer with the same commands native
// rules give (runtime.Commands as JSON). samples/rules/README.md documents
// the ABI for rule authors.
//
// Loader implements runtime.ModuleLoader. Each module is read, checked,
// instrumented (instrument.go: fuel and stop checks at function entries and
// loop headers, so a call can always be stopped and never holds up the
// garbage collector) and compiled once, with a compilation cache shared by
// the loader's modules, on disk with Options.CacheDir (diskcache.go: pruned
// when the loader opens it, runtime/internal/wasmcache). The returned *Rule serves calls from a pool of warm
// instances, each with its own worker goroutine: a call is answered at its
// timeout even if the guest has not returned, the guest is then stopped at
// its next check, and an instance that failed in any way is closed and
// replaced in the background, never reused. Guests get the host's real
// clocks and crypto/rand, no file system, no network unless allowed_hosts
// says so, a memory cap, an output cap, and the host functions in host.go
// (log, config_get, authz_is_member, authz_user_policy).
//
// The fast call path bypasses go-sdk's Plugin.CallWithContext, which looks
// up every kernel function by name on every call (a 10 KiB allocation each),
// by reading the plugin's kernel and main module once (instance.go); a
// go-sdk upgrade that moves them fails every load with a clear error.
package wasm
