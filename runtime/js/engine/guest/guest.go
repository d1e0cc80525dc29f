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
	rules                  bool       // a Rule (else an Action)
	entry                  goja.Value // the Rules function, or the Action's exports
	secrets, configuration goja.Value
}

// Engine is one JavaScript runtime with the rules it compiled. It is not
// safe for concurrent use (an engine instance serves one call at a time).
type Engine struct {
	host   Host
	rt     *goja.Runtime
	parser *jsonParser
	// The prelude's functions and api objects.
	load, runRule, thenable, raise, arrayIsArray goja.Callable
	loginAPI, m2mAPI                             goja.Value
	promise                                      *goja.Object // the Promise constructor
	rules                                        map[string]*rule
	// st is the call in flight (api.go); calls counts calls, for its id.
	st    callState
	calls uint64
	out   jsonWriter
	// val is the scratch buffer values are copied into (api.go).
	val     jsonWriter
	valBusy bool
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
	e := &Engine{host: h, rt: rt, parser: newParser(rt), rules: map[string]*rule{}}
	e.promise = rt.Get("Promise").ToObject(rt)
	v, err := rt.RunScript("prelude.js", preludeSource)
	if err != nil {
		return nil, fmt.Errorf("prelude: %w", err)
	}
	prelude, ok := goja.AssertFunction(v)
	if !ok {
		return nil, errors.New("prelude: not a function")
	}
	v, err = prelude(goja.Undefined(), rt.GlobalObject(), e.natives())
	if err != nil {
		return nil, fmt.Errorf("prelude: %w", err)
	}
	p, ok := v.(*goja.Object)
	if !ok {
		return nil, errors.New("prelude: no exports")
	}
	for name, f := range map[string]*goja.Callable{"load": &e.load, "runRule": &e.runRule, "thenable": &e.thenable, "raise": &e.raise, "isArray": &e.arrayIsArray} {
		if *f, ok = goja.AssertFunction(p.Get(name)); !ok {
			return nil, fmt.Errorf("prelude: no %s", name)
		}
	}
	e.loginAPI, e.m2mAPI = p.Get("login"), p.Get("m2m")
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
	entry, err := e.load(goja.Undefined(), e.rt.ToValue(d.Style), fn)
	if err != nil {
		return nil, err
	}
	r := &rule{rules: d.Style == "rules", entry: entry,
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
	e.calls++
	e.st.reset(e.calls)
	defer func() { e.st.id = 0 }()
	if r.rules {
		// {user, context}: a Rule reads both whole.
		ev, err := e.parser.parseJSON(req.raw[req.eventStart:req.eventEnd])
		if err != nil {
			return nil, fmt.Errorf("engine input: %w", err)
		}
		if _, err := e.runRule(goja.Undefined(), r.entry, ev, r.configuration); err != nil {
			return nil, describe(err)
		}
	} else if err := e.runAction(r, &req); err != nil {
		return nil, err
	}
	if !e.st.settled {
		if r.rules {
			return nil, errRulePending
		}
		return nil, errActionPending
	}
	if e.st.failed {
		if e.st.err == nil {
			return nil, errNoReason
		}
		_, err := e.raise(goja.Undefined(), e.st.err)
		return nil, describe(err)
	}
	e.out.buf, e.out.max = e.out.buf[:0], req.maxOutput
	if err := e.commands(&e.out); err != nil {
		if errors.Is(err, errOutputTooLarge) {
			return nil, fmt.Errorf("the rule's commands are over the %d byte cap", req.maxOutput)
		}
		return nil, err
	}
	if req.maxOutput > 0 && len(e.out.buf) > req.maxOutput {
		return nil, fmt.Errorf("the rule's commands are %d bytes, over the %d byte cap", len(e.out.buf), req.maxOutput)
	}
	if cap(e.out.buf) > 256<<10 {
		// Keep a large answer until it is copied out, not for good.
		out := e.out.buf
		e.out.buf = nil
		return out, nil
	}
	return e.out.buf, nil
}

// runAction calls an Action's handler for the trigger with its event and
// the api, and settles the call by what the handler returned: its promise
// as the call's jobs left it (goja runs every job the call queued before
// it returns here), a thenable through the job queue, anything else at
// once.
func (e *Engine) runAction(r *rule, req *request) error {
	ev := e.newLazyEvent(req, r)
	name, api := "onExecutePostLogin", e.loginAPI
	if req.trigger == "credentials-exchange" {
		name, api = "onExecuteCredentialsExchange", e.m2mAPI
	}
	var fn goja.Callable
	var ok bool
	if ex := e.rt.Try(func() { fn, ok = goja.AssertFunction(r.entry.(*goja.Object).Get(name)) }); ex != nil {
		return describe(ex) // a getter on exports threw
	}
	if !ok {
		e.st.settled = true
		return nil
	}
	res, err := fn(goja.Undefined(), ev, api)
	if err != nil {
		return describe(err)
	}
	o, ok := res.(*goja.Object)
	if !ok {
		e.st.settled = true
		return nil
	}
	// instanceof and .then run a script's code on odd objects (proxy
	// traps, getters): what they throw fails the call.
	var promise, thenable bool
	if ex := e.rt.Try(func() {
		if promise = e.rt.InstanceOf(o, e.promise); !promise {
			_, thenable = goja.AssertFunction(o.Get("then"))
		}
	}); ex != nil {
		return describe(ex)
	}
	switch {
	case promise:
		e.settleBy(o)
	case thenable:
		// A thenable of the handler's own: settled through the job queue.
		if _, err := e.thenable(goja.Undefined(), o); err != nil {
			return describe(err)
		}
	default:
		e.st.settled = true
	}
	return nil
}

// settleBy settles the call by the state of the promise an Action's
// handler returned. One that is not goja's (an object made from
// Promise.prototype) never settles.
func (e *Engine) settleBy(o *goja.Object) {
	if p, ok := o.Export().(*goja.Promise); ok {
		switch p.State() {
		case goja.PromiseStateFulfilled:
			e.st.settled = true
		case goja.PromiseStateRejected:
			reason := p.Result()
			if reason == nil {
				reason = goja.Undefined()
			}
			e.st.fail(reason)
		}
	}
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
