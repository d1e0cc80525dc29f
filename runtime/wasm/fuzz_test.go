package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/claimsmith/claimsmith/runtime"
)

// FuzzInstrument: the instrumentation reads modules from outside. It never
// panics; when the original compiles, so does the instrumented module; and an
// instrumented module is refused a second time (its stop export is taken).
func FuzzInstrument(f *testing.F) {
	for _, src := range []string{infiniteLoop, deepRecursion, fmt.Sprintf(callTree, 3),
		`(module (import "extism:host/env" "config_get" (func (param i64) (result i64))) (import "m" "g" (global i32)) (global $x (mut i64) (i64.const 1)) (memory 1) (table 2 funcref) (func (export "on_login") (result i32) (block (loop (br_if 1 (i32.const 1)) (br 0))) (global.get 0)))`,
		`(module (func (export "on_login") (result i32) (local v128) (local.set 0 (v128.const i32x4 1 2 3 4)) (i32x4.extract_lane 0 (local.get 0))))`,
	} {
		p := watModule(f, "seed", src)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"deny-blocked-ips", "add-tenant-claim"} {
		b, err := os.ReadFile(samples.MustBuild(f, s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x0a\x05\x01\x03\x00\x03"))
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, mod []byte) {
		out, err := instrument(mod)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("\x00asm\x01\x00\x00\x00")) {
			t.Fatal("output lost the header")
		}
		if c, err := rt.CompileModule(ctx, mod); err == nil {
			_ = c.Close(ctx)
			c2, err := rt.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("original compiles, instrumented does not: %v", err)
			}
			_ = c2.Close(ctx)
			if _, err := instrument(out); err == nil {
				t.Fatal("an instrumented module was accepted again")
			}
		}
	})
}

// FuzzDecodeCommands: guest output is outside input. Decoding never panics,
// and what decodes re-encodes to commands that decode the same.
func FuzzDecodeCommands(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"id_token":{"claims":{"https://x/a":1,"https://x/b":[1,"2"]}}}`,
		`{"access_token":{"claims":{},"add_scopes":["a"],"remove_scopes":["b"]},"access":{"vote":"deny","reason":"r","code":"unauthorized"}}`,
		`{"app_metadata":{"a":{"b":null}},"user_metadata":{},"log":[{"level":"info","msg":"m"}]}`,
		`{"id_tokens":{}}`, `{"access":{"vote":"maybe"}}`, `{} {}`, `[`, `null`,
		`{"ID_Token":{"Claims":{"a\u0062":[1,{"x":2.50}],"c":"\u00e9"}}}`, `{"id_token":{"claims":[]}}`,
		`{"log":[{"level":"info","msg":"m","x":1}]}`, `{"access":{"vote":"deny","why":"x"}}`,
		`{"id_token":{"claims":{"a":1,"a":2,"b":-0.5e3}},"access_token":null}`, "{\"id_token\":{\"claims\":{\"s\":\"\xff\"}}}",
		// Duplicate keys, exact or as encoding/json matches field names.
		`{"access":{"vote":"deny"},"Access":{"vote":"allow"}}`, `{"access":{"vote":"deny","VOTE":"allow"}}`,
		`{"app_metadata":{"x":{"y":1,"y":2}}}`, `{"id_token":{"claims":{"a":1,"\u0061":2}}}`,
		`{"id_token":{"claims":{"a":1,"A":2}}}`, `{"log":[{"level":"info","LEVEL":"warn"}]}`,
		`{"id_token":{"claims":{"x":[{"k":1},{"k":2}],"k":3}}}`, "{\"user_metadata\":{\"\xff\":1,\"\xfe\":2}}",
		`{"app_metadata":{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19,"k3":0}}`,
		`{"app_metadata":{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c, ref runtime.Commands
		err := decodeCommands(b, &c)
		refErr := decodeReference(b, &ref)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("decodeCommands: %v, reference decoder: %v, for %q", err, refErr, b)
		}
		if err != nil {
			return
		}
		got, _ := json.Marshal(&c)
		want, _ := json.Marshal(&ref)
		if !bytes.Equal(got, want) {
			t.Fatalf("decodeCommands and the reference decoder differ for %q:\n%s\n%s", b, got, want)
		}
		enc, err := json.Marshal(&c)
		if err != nil {
			t.Fatalf("decoded commands do not encode: %v", err)
		}
		var c2 runtime.Commands
		if err := decodeCommands(enc, &c2); err != nil {
			t.Fatalf("re-encoded commands %s do not decode: %v", enc, err)
		}
		enc2, _ := json.Marshal(&c2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the commands:\n%s\n%s", enc, enc2)
		}
	})
}

// decodeReference is the obvious strict decoder decodeCommands replaces.
func decodeReference(b []byte, out *runtime.Commands) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the top-level object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the top-level object")
	}
	return referenceDuplicates(b)
}

// referenceDuplicates refuses a key twice in one object, token by token.
// In the objects of the commands' own shape keys match as encoding/json
// matches field names: case-insensitively.
func referenceDuplicates(b []byte) error {
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool   // object: the next string is a key
		field  string // object: the member being read
		role   string // root, token, access, log, entry or ""
	}
	fold := map[string][]string{"root": commandKeys, "token": tokenKeys, "access": accessKeys, "entry": logKeys}
	dec := json.NewDecoder(bytes.NewReader(b))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
			continue
		}
		if k, ok := tok.(string); ok && top != nil && top.object && top.key {
			name := k
			for _, f := range fold[top.role] {
				if strings.EqualFold(f, k) {
					name = f
				}
			}
			if top.keys[name] {
				return fmt.Errorf("duplicate key %q", k)
			}
			top.keys[name], top.key, top.field = true, false, name
			continue
		}
		d, open := tok.(json.Delim)
		if !open {
			if top != nil && top.object {
				top.key = true
			}
			continue
		}
		f := &frame{object: d == '{', keys: map[string]bool{}, key: true}
		switch {
		case top == nil:
			f.role = "root"
		case top.role == "root" && d == '{' && (top.field == "id_token" || top.field == "access_token"):
			f.role = "token"
		case top.role == "root" && d == '{' && top.field == "access":
			f.role = "access"
		case top.role == "root" && d == '[' && top.field == "log":
			f.role = "log"
		case top.role == "log" && d == '{':
			f.role = "entry"
		}
		stack = append(stack, f)
	}
}
