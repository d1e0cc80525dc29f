//go:build wasip1

// Command engine is claimsmith's JavaScript engine: goja compiled into an
// extism guest, loaded by runtime/wasm like any rule module, so a
// JavaScript rule gets the same timeout, memory cap, stop flag and
// discard-and-replace as a WebAssembly rule. runtime/js embeds the built
// module (engine.wasm.gz); `make js-engine` rebuilds it.
//
// The engine itself is package guest (no build constraint, so it is also
// tested and profiled natively); this file is the extism glue: the
// exports, the host functions, the guest's garbage collector settings.
package main

import (
	"fmt"
	"runtime/debug"
	"strconv"

	pdk "github.com/extism/go-pdk"

	"github.com/claimsmith/claimsmith/runtime/js/engine/guest"
)

// js_rule(id) returns the JSON RuleDef of a rule, 0 when unknown.
//
//go:wasmimport extism:host/user js_rule
func hostJSRule(id uint64) uint64

// js_cache(request JSON) returns the JSON answer of a cache operation.
//
//go:wasmimport extism:host/user js_cache
func hostJSCache(req uint64) uint64

type pdkHost struct{}

func (pdkHost) Rule(id string) ([]byte, error) {
	mem := pdk.AllocateString(id)
	off := hostJSRule(mem.Offset())
	mem.Free()
	if off == 0 {
		return nil, nil
	}
	res := pdk.FindMemory(off)
	b := res.ReadBytes()
	res.Free()
	return b, nil
}

func (pdkHost) Cache(req []byte) ([]byte, error) {
	mem := pdk.AllocateBytes(req)
	off := hostJSCache(mem.Offset())
	mem.Free()
	res := pdk.FindMemory(off)
	b := res.ReadBytes()
	res.Free()
	return b, nil
}

// Garbage collector settings, from the module's config (runtime/js sets
// them; see its Options.GuestGCPercent). The guest's collector marks the
// whole goja heap on the one thread the login runs on, so every cycle is
// on some login's path: a higher GOGC makes cycles rarer, and the memory
// limit makes the collector work harder instead of growing linear memory
// into the instance's cap (an out-of-memory trap) when a script's garbage
// gets large.
const (
	configGCPercent   = "gc_percent"
	configMemoryLimit = "memory_limit"
	// defaultGCPercent applies when the config has none.
	defaultGCPercent = 200
)

// The engine starts while the module initialises (_initialize runs
// package initialisation), under the loader's initialisation deadline, so
// the first login on an instance does not pay for it. A guest's exports
// are plain functions, so the state they share lives in these variables.
var eng, engErr = start()

func start() (*guest.Engine, error) {
	gc := defaultGCPercent
	if v, ok := pdk.GetConfig(configGCPercent); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("config %s=%q: %w", configGCPercent, v, err)
		}
		gc = n
	}
	debug.SetGCPercent(gc)
	if v, ok := pdk.GetConfig(configMemoryLimit); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("config %s=%q: not a positive byte count", configMemoryLimit, v)
		}
		debug.SetMemoryLimit(n)
	}
	return guest.New(pdkHost{})
}

func run() int32 {
	if engErr != nil {
		pdk.SetError(engErr)
		return 1
	}
	out, err := eng.Call(pdk.Input())
	if err != nil {
		pdk.SetError(err)
		return 1
	}
	pdk.Output(out)
	return 0
}

//go:wasmexport on_login
func onLogin() int32 { return run() }

//go:wasmexport on_credentials_exchange
func onCredentialsExchange() int32 { return run() }

func main() {}
