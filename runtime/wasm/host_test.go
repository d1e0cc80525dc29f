package wasm

import (
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestHostLogAndConfig: claimsmith's log host function and the PDKs' own
// extism:host/env log and config functions (redirected to claimsmith's)
// land in the trace and read the rule's config.
func TestHostLogAndConfig(t *testing.T) {
	t.Parallel()
	const src = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "config_get" (func $env_config (param i64) (result i64)))
  (import "extism:host/env" "log_warn" (func $log_warn (param i64)))
  (import "extism:host/env" "get_log_level" (func $level (result i32)))
  (import "extism:host/user" "log" (func $log (param i32 i64)))
  (import "extism:host/user" "config_get" (func $config (param i64) (result i64)))
  (memory 1)
  (data (i32.const 0) "greeting")
  (data (i32.const 16) "from the PDK")
  (data (i32.const 32) "missing")
  ;; to_host copies n bytes at p into a new kernel block
  (func $to_host (param $p i32) (param $n i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done (loop $copy
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i))) (i32.load8_u (i32.add (local.get $p) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (local.get $off))
  (func (export "on_login") (result i32)
    (local $v i64)
    ;; extism's config_get: log the value at level error through claimsmith's log
    (local.set $v (call $env_config (call $to_host (i32.const 0) (i32.const 8))))
    (if (i64.eqz (local.get $v)) (then unreachable))
    (call $log (i32.const 3) (local.get $v))
    ;; claimsmith's config_get: a missing key is 0
    (if (i64.ne (call $config (call $to_host (i32.const 32) (i32.const 7))) (i64.const 0)) (then unreachable))
    ;; the PDK's log, when the level allows it
    (if (i32.le_s (call $level) (i32.const 3))
      (then (call $log_warn (call $to_host (i32.const 16) (i32.const 12)))))
    (i32.const 0)))`
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "logs", Path: watModule(t, "logs", src), Config: map[string]string{"greeting": "hello from config"}, PoolSize: 1})
	for i := 0; i < 2; i++ { // the second call must not see the first one's lines
		out, err := runRule(t, r, sampleEvent())
		if err != nil {
			t.Fatal(err)
		}
		want := []runtime.LogLine{{Level: "error", Msg: "hello from config"}, {Level: "warn", Msg: "from the PDK"}}
		if len(out.Log) != len(want) || out.Log[0] != want[0] || out.Log[1] != want[1] {
			t.Fatalf("call %d: log = %+v, want %+v", i, out.Log, want)
		}
	}
}
