// Package guest is the JavaScript engine's core: goja with claimsmith's
// Auth0 compatibility layer (prelude.js). The wasip1 main package in the
// parent directory wraps it in extism exports and host functions; this
// package has no build constraint, so its tests and benchmarks run natively
// too (go test -cpuprofile shows where the guest's time goes, the same code
// as inside the sandbox).
//
// One Engine serves every JavaScript rule of a pipeline: it asks the host
// for a rule's source the first time the rule is called and keeps the
// compiled program, so memory grows with instances (cores), not with rules.
package guest

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	goruntime "runtime"
	"runtime/debug"
	"strings"

	"github.com/dop251/goja"
)

//go:embed prelude.js
var preludeSource string

// Host is what the engine asks of the process running it.
type Host interface {
	// Rule returns a rule's definition (RuleDef as JSON), nil when the host
	// knows no such rule.
	Rule(id string) ([]byte, error)
	// Cache runs one api.cache operation (a JSON request) and returns the
	// JSON answer.
	Cache(req []byte) ([]byte, error)
}

// RuleDef is what Host.Rule answers.
type RuleDef struct {
	Name          string            `json:"name"`
	Source        string            `json:"source"`
	Style         string            `json:"style"`
	Configuration map[string]string `json:"configuration"`
	Secrets       map[string]string `json:"secrets"`
}

type rule struct {
	rules                  bool // a Rule (else an Action)
	style                  goja.Value
	entry                  goja.Value // the Rules function, or the Action's exports
	secrets, configuration goja.Value
}

// Engine is one JavaScript runtime with the rules it compiled. It is not
// safe for concurrent use (an engine instance serves one call at a time).
type Engine struct {
	host              Host
	rt                *goja.Runtime
	parser            *jsonParser
	load, run, finish goja.Callable
	rules             map[string]*rule
	out               jsonWriter
	scratch           []lazyEntry // newLazyObject's
	// settle states for __finish, made once.
	fulfilled, rejected, pending, other goja.Value
}

// MaxCallStack bounds JavaScript call depth. Node allows about 11,000
// frames of a small function; inside the sandbox unwinding that many took
// longer than a login's timeout, and rules never need that depth.
const MaxCallStack = 3000

// New starts a runtime and runs the prelude.
func New(h Host) (*Engine, error) {
	rt := goja.New()
	rt.SetFieldNameMapper(goja.TagFieldNameMapper("json", true))
	// Unbounded recursion throws a RangeError at once instead of growing
	// until the memory cap or the timeout ends it.
	rt.SetMaxCallStackSize(MaxCallStack)
	e := &Engine{host: h, rt: rt, parser: newParser(rt), rules: map[string]*rule{},
		fulfilled: rt.ToValue("fulfilled"), rejected: rt.ToValue("rejected"), pending: rt.ToValue("pending"), other: rt.ToValue("other")}
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

func (e *Engine) rule(id string) (*rule, error) {
	if r, ok := e.rules[id]; ok {
		return r, nil
	}
	b, err := e.host.Rule(id)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("the host knows no JavaScript rule %q", id)
	}
	var d RuleDef
	if err := json.Unmarshal(b, &d); err != nil {
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
	style := e.rt.ToValue(d.Style)
	entry, err := e.load(goja.Undefined(), style, fn)
	if err != nil {
		return nil, err
	}
	r := &rule{rules: d.Style == "rules", style: style, entry: entry,
		secrets: jsonObject(e.rt, d.Secrets), configuration: jsonObject(e.rt, d.Configuration)}
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

// Call runs one call: in is {"rule": id, "event": {…}, "max_output": n}
// or {"rule": id, "check": true} (compile only); the answer is
// claimsmith's commands JSON, valid until the next call.
func (e *Engine) Call(in []byte) (_ []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("engine panic: %v", v)
		}
	}()
	req, err := e.parser.parseInput(in)
	if err != nil {
		return nil, err
	}
	if req.stats {
		return []byte(Stats()), nil
	}
	r, err := e.rule(req.rule)
	if err != nil {
		return nil, describe(err)
	}
	if req.check {
		return []byte(`{}`), nil
	}
	if req.eventEnd == 0 {
		return nil, errors.New("engine input: no event")
	}
	var ev goja.Value
	if r.rules {
		// {user, context}: a Rule reads both whole.
		ev, err = e.parser.parseJSON(req.raw[req.eventStart:req.eventEnd])
	} else {
		ev, err = e.newLazyEvent(req.raw, req.eventStart, req.eventEnd, r)
	}
	if err != nil {
		return nil, fmt.Errorf("engine input: %w", err)
	}
	res, err := e.run(goja.Undefined(), r.style, r.entry, ev, r.configuration, e.rt.ToValue(req.trigger))
	if err != nil {
		return nil, describe(err)
	}
	// An Action's promise is read here rather than through .then() in
	// JavaScript: by now goja has run every job the call queued, so the
	// promise is as settled as it will ever be.
	state, reason := e.other, goja.Undefined()
	if o, ok := res.(*goja.Object); ok {
		if p, ok := o.Export().(*goja.Promise); ok {
			switch p.State() {
			case goja.PromiseStateFulfilled:
				state = e.fulfilled
			case goja.PromiseStateRejected:
				state, reason = e.rejected, p.Result()
				if reason == nil {
					reason = goja.Undefined()
				}
			default:
				state = e.pending
			}
		}
	}
	out, err := e.finish(goja.Undefined(), state, reason)
	if err != nil {
		return nil, describe(err)
	}
	o, ok := out.(*goja.Object)
	if !ok {
		return nil, errors.New("prelude: __finish returned no object")
	}
	e.out.buf, e.out.max = e.out.buf[:0], req.maxOutput
	if err := e.out.commands(o); err != nil {
		if errors.Is(err, errOutputTooLarge) {
			return nil, fmt.Errorf("the rule's commands are over the %d byte cap", req.maxOutput)
		}
		return nil, err
	}
	if req.maxOutput > 0 && len(e.out.buf) > req.maxOutput {
		return nil, fmt.Errorf("the rule's commands are %d bytes, over the %d byte cap", len(e.out.buf), req.maxOutput)
	}
	return e.out.buf, nil
}

// Stats is the engine's memory and collector figures as commands JSON (one
// debug log line), for benchmarks and tests: {"stats": true} as input.
func Stats() string {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	msg := fmt.Sprintf("engine stats: heap_alloc=%d heap_sys=%d sys=%d num_gc=%d pause_total_ns=%d gc_cpu_fraction=%.4f gc_percent=%d memory_limit=%d",
		ms.HeapAlloc, ms.HeapSys, ms.Sys, ms.NumGC, ms.PauseTotalNs, ms.GCCPUFraction, gc, debug.SetMemoryLimit(-1))
	b, _ := json.Marshal(map[string]any{"log": []map[string]string{{"level": "debug", "msg": msg}}})
	return string(b)
}

// describe turns a JavaScript exception into its message and the first
// frames of its stack, without goja's Go frames.
func describe(err error) error {
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return fmt.Errorf("RangeError: Maximum call stack size exceeded (%d frames)%s", MaxCallStack, strings.ReplaceAll(so.Error(), "\n", ";"))
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

// cache is api.cache's bridge to the host.
func (e *Engine) cache(op, key string, rest ...goja.Value) goja.Value {
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
	res, err := e.host.Cache(b)
	if err != nil {
		panic(e.rt.NewGoError(err))
	}
	var ans any
	if err := json.Unmarshal(res, &ans); err != nil {
		panic(e.rt.NewGoError(err))
	}
	if ans == nil {
		return goja.Undefined()
	}
	return e.rt.ToValue(ans)
}
