package wasm

import (
	"fmt"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// outputSetModule's on_login writes {"access":{"vote":"deny"}} into a
// block it allocated ($off) and calls output_set(offset, length): the
// two WebAssembly expressions given.
func outputSetModule(offset, length string) string {
	return outputModule(`{"access":{"vote":"deny"}}`, offset, length)
}

// outputModule's on_login copies out into a block it allocated ($off) and
// calls output_set(offset, length).
func outputModule(out, offset, length string) string {
	return fmt.Sprintf(`(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (memory 1)
  (data (i32.const 0) %q)
  (func (export "on_login") (result i32)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.const %d)))
    (block $done (loop $copy
      (br_if $done (i32.ge_u (local.get $i) (i32.const %d)))
      (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $copy)))
    (call $output_set %s %s)
    (i32.const 0)))`, out, len(out), len(out), offset, length)
}

// TestOutputOutOfRangeIsBadOutput (issue 14 item 12): an output_set the
// kernel cannot honour (offset or length out of range, or not a block the
// guest allocated) failed to nothing — no output, read as abstain. It is a
// bad-output failure, so on_error applies.
func TestOutputOutOfRangeIsBadOutput(t *testing.T) {
	t.Parallel()
	l := newTestLoader(Options{Logger: testLogger(t)})
	r := load(t, l, runtime.ModuleSpec{Name: "ok", Path: watModule(t, "ok", outputSetModule("(local.get $off)", "(i64.const 26)")), PoolSize: 1})
	out, err := runRule(t, r, sampleEvent())
	if err != nil || out.Access.Vote != runtime.Deny {
		t.Fatalf("well-formed output: %v, %+v; want the deny", err, out.Access)
	}
	for _, tc := range []struct{ name, offset, length string }{
		{"offset-past-4GiB", "(i64.const 0x100000000)", "(i64.const 0)"},
		{"offset-wraps-into-range", "(i64.add (i64.const 0x100000000) (local.get $off))", "(i64.const 26)"},
		{"offset-past-memory", "(i64.const 0x7fffff00)", "(i64.const 0)"},
		{"not-a-block", "(i64.const 8)", "(i64.const 26)"},
		{"length-past-4GiB", "(local.get $off)", "(i64.const 0x10000001a)"},
		{"length-past-block", "(local.get $off)", "(i64.const 0x7fffffff)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := load(t, l, runtime.ModuleSpec{Name: tc.name, Path: watModule(t, tc.name, outputSetModule(tc.offset, tc.length)), PoolSize: 1, Timeout: 5 * time.Second})
			out, err := runRule(t, r, sampleEvent())
			wantRuleError(t, err, tc.name, runtime.ErrInvalid, "bad output")
			if out.Access.Vote != runtime.Abstain {
				t.Errorf("commands %+v kept from a failed call", out.Access)
			}
			if st := r.Status(); st.Failures != 1 || st.Discarded != 1 {
				t.Errorf("status %+v: want one failure, the instance discarded", st)
			}
		})
	}
}
