//go:build wasip1

// Command engine is claimsmith's JavaScript engine: goja compiled into an
// extism guest, loaded by runtime/wasm like any rule module, so a
// JavaScript rule gets the same timeout, memory cap, stop flag and
// discard-and-replace as a WebAssembly rule. runtime/js embeds the built
// module (engine.wasm.gz); `make js-engine` rebuilds it.
//
// One engine instance serves every JavaScript rule of a pipeline: it asks the
// host for a rule's source (js_rule) the first time the rule is called and
// keeps the compiled program, so memory grows with instances (cores), not
// with rules. Input of every call: {"rule": id, "event": {…}} or
// {"rule": id, "check": true} (compile only); output: claimsmith's commands
// JSON. Auth0's shapes are built by prelude.js.
package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/dop251/goja"
	pdk "github.com/extism/go-pdk"
)

//go:embed prelude.js
var preludeSource string

// js_rule(id) returns the JSON ruleDef of a rule, 0 when unknown.
//
//go:wasmimport extism:host/user js_rule
func hostJSRule(id uint64) uint64

// js_cache(request JSON) returns the JSON answer of a cache operation.
//
//go:wasmimport extism:host/user js_cache
func hostJSCache(req uint64) uint64

type ruleDef struct {
	Name          string            `json:"name"`
	Source        string            `json:"source"`
	Style         string            `json:"style"`
	Configuration map[string]string `json:"configuration"`
	Secrets       map[string]string `json:"secrets"`
}

type rule struct {
	style string
	entry goja.Value // the Rules function, or the Action's exports
	def   goja.Value // {configuration, secrets}
}

// engine is the instance's JavaScript runtime. A guest's exports are plain
// functions, so the state they share lives in this one variable.
type engine struct {
	rt                *goja.Runtime
	load, run, finish goja.Callable
	rules             map[string]*rule
}

// The engine starts while the module initialises (_initialize runs
// package initialisation), under the loader's initialisation deadline, so
// the first login on an instance does not pay for it.
var eng, engErr = newEngine()

func newEngine() (*engine, error) {
	// The guest's collector is a stop-the-world mark of the whole goja heap
	// on a single thread; at the default GOGC it ran every few logins and
	// was most of a login's cost.
	debug.SetGCPercent(gcPercent)
	rt := goja.New()
	rt.SetFieldNameMapper(goja.TagFieldNameMapper("json", true))
	// Unbounded recursion throws a RangeError at once instead of growing
	// until the memory cap or the timeout ends it.
	rt.SetMaxCallStackSize(maxCallStack)
	e := &engine{rt: rt, rules: map[string]*rule{}}
	if err := rt.Set("__cache", e.cache); err != nil {
		return nil, err
	}
	if _, err := rt.RunScript("prelude.js", preludeSource); err != nil {
		return nil, fmt.Errorf("prelude: %w", err)
	}
	var ok bool
	g := rt.GlobalObject()
	if e.load, ok = goja.AssertFunction(g.Get("__load")); !ok {
		return nil, errors.New("prelude: no __load")
	}
	if e.run, ok = goja.AssertFunction(g.Get("__run")); !ok {
		return nil, errors.New("prelude: no __run")
	}
	if e.finish, ok = goja.AssertFunction(g.Get("__finish")); !ok {
		return nil, errors.New("prelude: no __finish")
	}
	return e, nil
}

func (e *engine) rule(id string) (*rule, error) {
	if r, ok := e.rules[id]; ok {
		return r, nil
	}
	mem := pdk.AllocateString(id)
	off := hostJSRule(mem.Offset())
	mem.Free()
	if off == 0 {
		return nil, fmt.Errorf("the host knows no JavaScript rule %q", id)
	}
	res := pdk.FindMemory(off)
	var d ruleDef
	err := json.Unmarshal(res.ReadBytes(), &d)
	res.Free()
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", id, err)
	}
	var src string
	switch d.Style {
	case "rules":
		// A Rule is a function expression; a trailing semicolon is common.
		src = "(" + strings.TrimRight(strings.TrimSpace(d.Source), ";") + "\n)"
	case "actions":
		src = "(function (exports, module, require) {" + d.Source + "\n})"
	default:
		return nil, fmt.Errorf("rule %q: unknown style %q", id, d.Style)
	}
	prog, err := goja.Compile(d.Name, src, false)
	if err != nil {
		return nil, err
	}
	fn, err := e.rt.RunProgram(prog)
	if err != nil {
		return nil, err
	}
	entry, err := e.load(goja.Undefined(), e.rt.ToValue(d.Style), fn)
	if err != nil {
		return nil, err
	}
	conf := d.Configuration
	if conf == nil {
		conf = map[string]string{}
	}
	secrets := d.Secrets
	if secrets == nil {
		secrets = map[string]string{}
	}
	def := e.rt.NewObject()
	_ = def.Set("configuration", e.rt.ToValue(jsonObject(e.rt, conf)))
	_ = def.Set("secrets", e.rt.ToValue(jsonObject(e.rt, secrets)))
	r := &rule{style: d.Style, entry: entry, def: def}
	e.rules[id] = r
	return r, nil
}

// jsonObject makes a plain JavaScript object (not a wrapped Go map, which
// would behave differently under Object.keys and JSON.stringify).
func jsonObject(rt *goja.Runtime, m map[string]string) goja.Value {
	o := rt.NewObject()
	for k, v := range m {
		_ = o.Set(k, v)
	}
	return o
}

// gcPercent is the guest's GOGC (see newEngine).
const gcPercent = 200

// maxCallStack bounds JavaScript call depth. Node allows about 11,000
// frames of a small function; inside the sandbox unwinding that many took
// longer than a login's timeout, and rules never need that depth.
const maxCallStack = 3000

type input struct {
	Rule  string          `json:"rule"`
	Check bool            `json:"check"`
	Event json.RawMessage `json:"event"`
	// MaxOutput is the host's output cap: a larger answer fails here,
	// before it is copied out byte block by byte block.
	MaxOutput int `json:"max_output"`
}

func call() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("engine panic: %v", v)
		}
	}()
	if engErr != nil {
		return engErr
	}
	var in input
	if err := json.Unmarshal(pdk.Input(), &in); err != nil {
		return fmt.Errorf("engine input: %w", err)
	}
	r, err := eng.rule(in.Rule)
	if err != nil {
		return describe(err)
	}
	if in.Check {
		pdk.OutputString(`{}`)
		return nil
	}
	rt := eng.rt
	ev, err := parseJSON(rt, in.Event)
	if err != nil {
		return err
	}
	trigger := ev.(*goja.Object).Get("trigger")
	if _, err := eng.run(goja.Undefined(), rt.ToValue(r.style), r.entry, ev, r.def, trigger); err != nil {
		return describe(err)
	}
	out, err := eng.finish(goja.Undefined())
	if err != nil {
		return describe(err)
	}
	res := out.String()
	if in.MaxOutput > 0 && len(res) > in.MaxOutput {
		return fmt.Errorf("the rule's commands are %d bytes, over the %d byte cap", len(res), in.MaxOutput)
	}
	pdk.OutputString(res)
	return nil
}

// describe turns a JavaScript exception into its message and the first
// frames of its stack, without goja's Go frames.
func describe(err error) error {
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return fmt.Errorf("RangeError: Maximum call stack size exceeded (%d frames)%s", maxCallStack, strings.ReplaceAll(so.Error(), "\n", ";"))
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		msg := ex.Error()
		if v := ex.Value(); v != nil {
			if o, ok := v.(*goja.Object); ok {
				if m := o.Get("message"); m != nil && !goja.IsUndefined(m) {
					name := "Error"
					if n := o.Get("name"); n != nil && !goja.IsUndefined(n) {
						name = n.String()
					}
					msg = name + ": " + m.String()
					if st := ex.String(); st != "" {
						if lines := strings.SplitN(st, "\n", 4); len(lines) > 1 {
							msg += " (" + strings.TrimSpace(strings.Join(lines[1:min(len(lines), 3)], "; ")) + ")"
						}
					}
				}
			} else {
				msg = "uncaught " + v.String()
			}
		}
		return errors.New(msg)
	}
	var se *goja.CompilerSyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("syntax error: %v", se)
	}
	return err
}

// cache is api.cache's bridge to the host (js_cache).
func (e *engine) cache(op, key string, rest ...goja.Value) goja.Value {
	req := map[string]any{"op": op, "key": key}
	if len(rest) > 0 {
		req["value"] = rest[0].String()
	}
	if len(rest) > 1 {
		if o, ok := rest[1].(*goja.Object); ok {
			if v := o.Get("ttl"); v != nil && !goja.IsUndefined(v) {
				req["ttl"] = v.ToInteger()
			}
			if v := o.Get("expires_at"); v != nil && !goja.IsUndefined(v) {
				req["expires_at"] = v.ToInteger()
			}
		}
	}
	b, _ := json.Marshal(req)
	mem := pdk.AllocateBytes(b)
	off := hostJSCache(mem.Offset())
	mem.Free()
	res := pdk.FindMemory(off)
	var ans any
	err := json.Unmarshal(res.ReadBytes(), &ans)
	res.Free()
	if err != nil {
		panic(e.rt.NewGoError(err))
	}
	if ans == nil {
		return goja.Undefined()
	}
	return e.rt.ToValue(ans)
}

func run() int32 {
	if err := call(); err != nil {
		pdk.SetError(err)
		return 1
	}
	return 0
}

//go:wasmexport on_login
func onLogin() int32 { return run() }

//go:wasmexport on_credentials_exchange
func onCredentialsExchange() int32 { return run() }

func main() {}
