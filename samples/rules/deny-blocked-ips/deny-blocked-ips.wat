;; deny-blocked-ips: a claimsmith sample rule written by hand in WebAssembly
;; text, against the raw extism kernel ABI (no PDK). It denies a login whose
;; request IP is in the comma-separated config value "blocked_ips" and
;; abstains otherwise (also when the config is not set).
;;
;; It looks for `"request":{"ip":"<ip>"` in the event. claimsmith encodes the
;; event with request.ip as the first key of "request" and no spaces, and a
;; quote inside a JSON string is always escaped, so the pattern cannot come
;; from a string value. A user-supplied object that mimics it (a metadata key
;; named "request") can only cause a deny, never avoid one.
;;
;; Build: wat2wasm deny-blocked-ips.wat -o deny-blocked-ips.wasm
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))

  (memory (export "memory") 1)

  ;; constants at fixed offsets
  (data (i32.const 0) "blocked_ips")                                   ;; 11 bytes
  (data (i32.const 16) "\"request\":{\"ip\":\"")                       ;; 17 bytes
  (data (i32.const 48) "{}")                                           ;; 2 bytes
  (data (i32.const 64) "{\"access\":{\"vote\":\"deny\",\"reason\":\"login from a blocked IP address\",\"code\":\"access_denied\"},\"log\":[{\"level\":\"info\",\"msg\":\"request IP is blocked\"}]}")
  (global $deny_len i32 (i32.const 147))
  (global $buf i32 (i32.const 1024)) ;; input, then config, are copied here

  ;; to_host copies n bytes at guest address p into a new kernel block.
  (func $to_host (param $p i32) (param $n i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8
          (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (local.get $off))

  ;; ensure grows guest memory so that [0, end) is addressable.
  (func $ensure (param $end i32)
    (local $have i32)
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.div_u (i32.sub (local.get $end) (local.get $have)) (i32.const 65536)) (i32.const 1)))
              (i32.const -1))
          (then unreachable)))))

  ;; memeq compares n bytes at a and b.
  (func $memeq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $i i32)
    (block $diff
      (loop $cmp
        (if (i32.ge_u (local.get $i) (local.get $n)) (then (return (i32.const 1))))
        (br_if $diff (i32.ne
          (i32.load8_u (i32.add (local.get $a) (local.get $i)))
          (i32.load8_u (i32.add (local.get $b) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $cmp)))
    (i32.const 0))

  ;; blocked reports whether the input (at $buf, $inlen bytes) contains the
  ;; prefix, then the ip at $ip ($iplen bytes), then a closing quote.
  (func $blocked (param $inlen i32) (param $ip i32) (param $iplen i32) (result i32)
    (local $i i32) (local $last i32)
    (if (i32.eqz (local.get $iplen)) (then (return (i32.const 0))))
    ;; last start position where prefix+ip+quote still fits
    (if (i32.lt_u (local.get $inlen) (i32.add (i32.add (local.get $iplen) (i32.const 17)) (i32.const 1)))
      (then (return (i32.const 0))))
    (local.set $last (i32.sub (local.get $inlen) (i32.add (i32.add (local.get $iplen) (i32.const 17)) (i32.const 1))))
    (block $no
      (loop $scan
        (br_if $no (i32.gt_u (local.get $i) (local.get $last)))
        (if (call $memeq (i32.add (global.get $buf) (local.get $i)) (i32.const 16) (i32.const 17))
          (then
            (if (call $memeq (i32.add (global.get $buf) (i32.add (local.get $i) (i32.const 17))) (local.get $ip) (local.get $iplen))
              (then
                (if (i32.eq (i32.load8_u (i32.add (global.get $buf) (i32.add (local.get $i) (i32.add (i32.const 17) (local.get $iplen))))) (i32.const 34))
                  (then (return (i32.const 1))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const 0))

  (func (export "on_login") (result i32)
    (local $inlen i32) (local $i i32) (local $cfg i64) (local $cfglen i32)
    (local $c i32) (local $start i32) (local $end i32) (local $ch i32) (local $hit i32)
    ;; copy the input to $buf, 8 bytes per host call, then the tail
    (local.set $inlen (i32.wrap_i64 (call $input_length)))
    (call $ensure (i32.add (i32.add (global.get $buf) (local.get $inlen)) (i32.const 8)))
    (block $done8
      (loop $copy8
        (br_if $done8 (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $inlen)))
        (i64.store (i32.add (global.get $buf) (local.get $i))
          (call $input_load_u64 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $copy8)))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $inlen)))
        (i32.store8 (i32.add (global.get $buf) (local.get $i))
          (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    ;; read config "blocked_ips" after the input
    (local.set $cfg (call $config_get (call $to_host (i32.const 0) (i32.const 11))))
    (if (i64.ne (local.get $cfg) (i64.const 0))
      (then
        (local.set $cfglen (i32.wrap_i64 (call $length (local.get $cfg))))
        (local.set $c (i32.add (global.get $buf) (local.get $inlen)))
        (call $ensure (i32.add (local.get $c) (local.get $cfglen)))
        (local.set $i (i32.const 0))
        (block $done2
          (loop $copy2
            (br_if $done2 (i32.ge_u (local.get $i) (local.get $cfglen)))
            (i32.store8 (i32.add (local.get $c) (local.get $i))
              (call $load_u8 (i64.add (local.get $cfg) (i64.extend_i32_u (local.get $i)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $copy2)))
        ;; walk the comma-separated entries, trimming spaces
        (local.set $start (i32.const 0))
        (block $entries
          (loop $entry
            (br_if $entries (i32.gt_u (local.get $start) (local.get $cfglen)))
            (local.set $end (local.get $start))
            (block $found_end
              (loop $find
                (br_if $found_end (i32.ge_u (local.get $end) (local.get $cfglen)))
                (br_if $found_end (i32.eq (i32.load8_u (i32.add (local.get $c) (local.get $end))) (i32.const 44)))
                (local.set $end (i32.add (local.get $end) (i32.const 1)))
                (br $find)))
            (local.set $i (local.get $start))
            (local.set $ch (local.get $end))
            (block $t1 (loop $l1
              (br_if $t1 (i32.ge_u (local.get $i) (local.get $ch)))
              (br_if $t1 (i32.ne (i32.load8_u (i32.add (local.get $c) (local.get $i))) (i32.const 32)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $l1)))
            (block $t2 (loop $l2
              (br_if $t2 (i32.le_u (local.get $ch) (local.get $i)))
              (br_if $t2 (i32.ne (i32.load8_u (i32.add (local.get $c) (i32.sub (local.get $ch) (i32.const 1)))) (i32.const 32)))
              (local.set $ch (i32.sub (local.get $ch) (i32.const 1)))
              (br $l2)))
            (if (call $blocked (local.get $inlen) (i32.add (local.get $c) (local.get $i)) (i32.sub (local.get $ch) (local.get $i)))
              (then (local.set $hit (i32.const 1)) (br $entries)))
            (local.set $start (i32.add (local.get $end) (i32.const 1)))
            (br $entry)))))
    (if (local.get $hit)
      (then (call $output_set (call $to_host (i32.const 64) (global.get $deny_len)) (i64.extend_i32_u (global.get $deny_len))))
      (else (call $output_set (call $to_host (i32.const 48) (i32.const 2)) (i64.const 2))))
    (i32.const 0))
)
