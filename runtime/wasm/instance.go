package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"unsafe"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero/api"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// instance is one warm plugin instance with its own worker goroutine. Calls
// run on the worker so that Run can answer at the deadline even if the guest
// does not stop (see Rule.abandon).
type instance struct {
	rule   *Rule
	plugin *extism.Plugin

	// Calls go to the extism kernel and the guest through cached function
	// handles. extism's Plugin.CallWithContext looks each kernel function up
	// by name on every call, and every wazero look-up allocates a call
	// engine with a 10 KiB stack — about 80 KiB per login, more when the
	// guest writes its output byte by byte through the kernel. The modules
	// live in unexported fields of extism.Plugin, read once here by
	// reflection (pluginModules); a go-sdk that moved them is refused at
	// load time rather than run without the stop flag.
	kernel *kernelModule
	main   api.Module
	kmem   api.Memory
	k      struct{ reset, alloc, inputSet, outputOffset, outputLength, errorGet, length, free api.Function }
	stack  [2]uint64
	// Worker-only state of the call in flight, read by callCtx.Value and
	// the host functions.
	hstack      [2]uint64
	inputOffset any

	onLogin, onCredentials api.Function
	// stop is the instrumentation's stop flag: setting it to 1 makes the
	// guest trap at its next check (see instrument.go).
	stop        api.MutableGlobal
	exportNames []string

	input bytes.Buffer
	enc   *json.Encoder
	// stderr keeps the end of what the guest wrote to stderr during the
	// call (a Go guest's panic message), for the error.
	stderr *tailBuffer
	output []byte
	// query and hostLogs belong to the call in flight: Run fills query
	// before the call and reads hostLogs after it; the worker's host
	// functions use them in between.
	query    authz.PolicyQuery
	groups   []string
	hostLogs []runtime.LogLine

	// outSet, outOff and outLen record the guest's last output_set of
	// the call in flight: the kernel silently ignores a block it does not
	// know, which would read as "no output" (abstain).
	outSet         bool
	outOff, outLen uint64

	req       chan callReq
	res       chan callRes
	abandoned atomic.Bool
}

type callReq struct {
	ctx    context.Context
	fn     api.Function
	export string
	// init runs the module's initialisers instead of fn.
	init bool
}

type callRes struct{ err error }

// newInstance instantiates the module and runs its initialisers (the start
// function, which instrument turned into an export, then the language's
// _initialize or constructors) on the instance's worker under the rule's
// initialisation deadline. Nothing of the guest runs outside a deadline and
// the stop flag: an initialiser that does not return in time is stopped like
// an abandoned call and counts as stuck until it has.
func (r *Rule) newInstance(ctx context.Context) (*instance, error) {
	stderr := &tailBuffer{max: 2048}
	p, err := r.compiled.Instance(ctx, extism.PluginInstanceConfig{ModuleConfig: r.moduleConfig.WithStderr(stderr)})
	if err != nil {
		return nil, err
	}
	// extism's default logger writes to the global log package.
	p.SetLogger(func(level extism.LogLevel, msg string) {
		r.log.Debug("wasm guest log", "level", level.String(), "msg", msg)
	})
	in := &instance{rule: r, plugin: p, stderr: stderr, req: make(chan callReq, 1), res: make(chan callRes, 1)}
	in.enc = json.NewEncoder(&in.input)
	in.enc.SetEscapeHTML(false)

	kernel, main, ok := pluginModules(p)
	if !ok {
		_ = p.Close(context.Background())
		return nil, errors.New("this build's extism go-sdk does not keep a plugin's modules where claimsmith reads them (written for go-sdk v1.7.1)")
	}
	in.main = main
	in.kernel = newKernelModule(kernel, in)
	in.kmem = kernel.ExportedMemory("memory")
	k := in.kernel
	in.k.reset, in.k.alloc, in.k.inputSet = k.fn("reset"), k.fn("alloc"), k.fn("input_set")
	in.k.outputOffset, in.k.outputLength = k.fn("output_offset"), k.fn("output_length")
	in.k.errorGet, in.k.length, in.k.free = k.fn("error_get"), k.fn("length"), k.fn("free")
	if in.kmem == nil || in.k.reset == nil || in.k.alloc == nil || in.k.inputSet == nil || in.k.outputOffset == nil ||
		in.k.outputLength == nil || in.k.errorGet == nil || in.k.length == nil || in.k.free == nil {
		_ = p.Close(context.Background())
		return nil, errors.New("the extism kernel lacks a function claimsmith calls (written for go-sdk v1.7.1)")
	}
	in.stop, _ = in.main.ExportedGlobal(stopExport).(api.MutableGlobal)
	if in.stop == nil {
		_ = p.Close(context.Background())
		return nil, errors.New("the instrumented module has no stop flag")
	}
	in.onLogin = in.main.ExportedFunction(ExportLogin)
	in.onCredentials = in.main.ExportedFunction(ExportCredentials)
	r.startWorker(in)

	ictx, cancel := context.WithTimeout(ctx, r.initTimeout)
	defer cancel()
	in.req <- callReq{ctx: ictx, init: true}
	select {
	case res := <-in.res:
		if res.err != nil {
			in.close()
			return nil, res.err
		}
		return in, nil
	case <-ictx.Done():
		r.abandonInit(in)
		if errors.Is(ictx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: the module's initialisers did not return within %v", runtime.ErrTimeout, r.initTimeout)
		}
		return nil, fmt.Errorf("initialising the module: %w", ctx.Err())
	}
}

func (r *Rule) startWorker(in *instance) {
	r.workers.Add(1)
	if r.live != nil {
		r.live.Add(1)
	}
	go in.worker()
}

// initGuest runs the guest language's initializer once, as extism would on
// the first call: WASI reactors (Go, Rust, C) export _initialize, Haskell
// hs_init, WASI commands __wasm_call_ctors. AssemblyScript and hand-written
// modules use the start section, which ran at instantiation.
func (in *instance) initGuest(ctx context.Context) error {
	cc := &callCtx{Context: ctx, in: in}
	call := func(name string, params ...uint64) error {
		f := in.main.ExportedFunction(name)
		if f == nil {
			return nil
		}
		if _, err := f.Call(cc, params...); err != nil {
			if name == startExport {
				name = "start function"
			}
			return describeCallError("guest initializer "+name, err)
		}
		return nil
	}
	if err := call(startExport); err != nil {
		return err
	}
	if in.main.ExportedFunction("hs_init") != nil {
		if err := call("_initialize"); err != nil {
			return err
		}
		return call("hs_init", 0, 0)
	}
	if in.main.ExportedFunction("_initialize") != nil {
		return call("_initialize")
	}
	return call("__wasm_call_ctors")
}

// checkSignatures rejects exports a call could not use: the ABI is a
// function without parameters returning nothing or one i32 status.
func (in *instance) checkSignatures() error {
	for name, f := range map[string]api.Function{ExportLogin: in.onLogin, ExportCredentials: in.onCredentials} {
		if f == nil {
			continue
		}
		d := f.Definition()
		res := d.ResultTypes()
		if len(d.ParamTypes()) != 0 || len(res) > 1 || (len(res) == 1 && res[0] != api.ValueTypeI32) {
			return fmt.Errorf("export %s has signature %v -> %v; the ABI wants () -> i32", name, typeNames(d.ParamTypes()), typeNames(res))
		}
	}
	return nil
}

func typeNames(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}

func (in *instance) worker() {
	for req := range in.req {
		in.stderr.reset()
		var err error
		if req.init {
			err = in.initGuest(req.ctx)
		} else {
			err = in.invoke(req)
		}
		if err != nil {
			if tail := in.stderr.String(); tail != "" {
				err = fmt.Errorf("%w; guest stderr: %s", err, tail)
			}
		}
		in.res <- callRes{err: err}
	}
	in.shutdown()
	if in.abandoned.Load() {
		in.rule.stuck.Add(-1)
	}
	if in.rule.live != nil {
		in.rule.live.Add(-1)
	}
	in.rule.workers.Done()
}

// shutdown closes the plugin; only the worker calls it, when its request
// channel was closed.
func (in *instance) shutdown() {
	_ = in.plugin.Close(context.Background())
}

// close stops the worker, which then closes the plugin. Whoever holds an
// instance (taken from the pool, or never handed out) may call it once.
func (in *instance) close() { close(in.req) }

// invoke runs one call: reset the kernel, hand it the input, call the export,
// collect the error or output. The output is copied into in.output.
func (in *instance) invoke(req callReq) error {
	cc := &callCtx{Context: req.ctx, in: in}
	defer func() { in.inputOffset = nil }()
	in.outSet = false
	st := in.stack[:]
	if err := in.k.reset.CallWithStack(cc, st); err != nil {
		return describeCallError(req.export, err)
	}
	st[0] = uint64(len(in.input.Bytes()))
	if err := in.k.alloc.CallWithStack(cc, st); err != nil {
		return describeCallError(req.export, err)
	}
	off := st[0]
	if !in.kmem.Write(uint32(off), in.input.Bytes()) {
		return fmt.Errorf("%s: writing the %d byte event into the plugin's memory failed", req.export, in.input.Len())
	}
	st[0], st[1] = off, uint64(in.input.Len())
	if err := in.k.inputSet.CallWithStack(cc, st); err != nil {
		return describeCallError(req.export, err)
	}
	in.inputOffset = off
	st[0] = 0
	if err := req.fn.CallWithStack(cc, st); err != nil {
		return describeCallError(req.export, err)
	}
	rc := uint32(0)
	if len(req.fn.Definition().ResultTypes()) == 1 {
		rc = uint32(st[0])
	}
	if err := in.k.errorGet.CallWithStack(cc, st); err != nil {
		return describeCallError(req.export, err)
	}
	if eoff := st[0]; eoff != 0 {
		msg, err := cc.read(eoff, 4096)
		if err != nil {
			return fmt.Errorf("%s failed (status %d), and its error message could not be read: %w", req.export, rc, err)
		}
		return fmt.Errorf("%s failed (status %d): %s", req.export, rc, msg)
	}
	if rc != 0 {
		return fmt.Errorf("%s failed with status %d", req.export, rc)
	}
	if err := in.k.outputLength.CallWithStack(cc, st); err != nil {
		return describeCallError(req.export, err)
	}
	n := st[0]
	if n > uint64(in.rule.maxOutput) {
		return fmt.Errorf("%w: %s output is %d bytes, over the %d byte cap", runtime.ErrTooLarge, req.export, n, in.rule.maxOutput)
	}
	if err := in.k.outputOffset.CallWithStack(cc, st); err != nil {
		return describeCallError(req.export, err)
	}
	at := st[0]
	if in.outSet && (in.outOff != at || in.outLen != n) {
		return fmt.Errorf("%w: %s set its output to %d bytes at offset %d, which is not a block it allocated (bad output)",
			runtime.ErrInvalid, req.export, in.outLen, in.outOff)
	}
	// In uint64: a 32-bit truncation must not wrap an offset into range.
	if at+n > uint64(in.kmem.Size()) {
		return fmt.Errorf("%w: %s output (%d bytes at offset %d) is outside the plugin's memory (bad output)", runtime.ErrInvalid, req.export, n, at)
	}
	view, ok := in.kmem.Read(uint32(at), uint32(n))
	if !ok {
		return fmt.Errorf("%w: %s output (%d bytes at offset %d) is outside the plugin's memory (bad output)", runtime.ErrInvalid, req.export, n, at)
	}
	in.output = append(in.output[:0], view...)
	return nil
}

// pluginModules reads the kernel and main module out of an extism.Plugin
// (go-sdk v1.7.1 keeps them in the unexported fields extism and mainModule).
func pluginModules(p *extism.Plugin) (kernel, main api.Module, ok bool) {
	v := reflect.ValueOf(p).Elem()
	modType := reflect.TypeFor[api.Module]()
	get := func(name string) api.Module {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Type() != modType {
			return nil
		}
		m, _ := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(api.Module)
		return m
	}
	kernel, main = get("extism"), get("mainModule")
	return kernel, main, kernel != nil && main != nil
}

// kernelModule is the extism kernel with its exported functions looked up
// once. It is what the guest's extism:host/env calls find in the context, so
// they reuse the handles too (go-sdk looks the function up on every call).
type kernelModule struct {
	api.Module
	fns map[string]api.Function
}

func newKernelModule(m api.Module, in *instance) *kernelModule {
	k := &kernelModule{Module: m, fns: map[string]api.Function{}}
	for name := range m.ExportedFunctionDefinitions() {
		k.fns[name] = m.ExportedFunction(name)
	}
	// The byte-wise loads and stores are plain memory accesses in the kernel
	// (go-sdk already does the 64-bit ones in Go). PDKs call them once per
	// byte of a string's tail, and each call into the kernel costs a wazero
	// call with its context watcher; doing them in Go is equivalent and
	// cheaper.
	mem := m.ExportedMemory("memory")
	if mem == nil {
		return k
	}
	goFn := func(name string, f func(stack []uint64) error) {
		if orig := k.fns[name]; orig != nil {
			k.fns[name] = &goKernelFunc{Function: orig, f: f}
		}
	}
	goFn("store_u8", func(st []uint64) error {
		if !mem.WriteByte(uint32(st[0]), byte(st[1])) {
			return fmt.Errorf("store_u8: offset %d is outside the plugin's memory", st[0])
		}
		return nil
	})
	goFn("load_u8", func(st []uint64) error {
		b, ok := mem.ReadByte(uint32(st[0]))
		if !ok {
			return fmt.Errorf("load_u8: offset %d is outside the plugin's memory", st[0])
		}
		st[0] = uint64(b)
		return nil
	})
	// output_set goes to the kernel as before, and is recorded (see
	// instance.outSet).
	if orig := k.fns["output_set"]; orig != nil {
		k.fns["output_set"] = &recordOutputSet{Function: orig, in: in}
	}
	goFn("input_load_u8", func(st []uint64) error {
		off, _ := in.inputOffset.(uint64)
		b, ok := mem.ReadByte(uint32(off + st[0]))
		if !ok {
			return fmt.Errorf("input_load_u8: offset %d is outside the input", st[0])
		}
		st[0] = uint64(b)
		return nil
	})
	return k
}

// goKernelFunc is a kernel function done in Go (see newKernelModule).
type goKernelFunc struct {
	api.Function // the kernel's own: its Definition stays right
	f            func(stack []uint64) error
}

func (g *goKernelFunc) CallWithStack(_ context.Context, stack []uint64) error { return g.f(stack) }

func (g *goKernelFunc) Call(_ context.Context, params ...uint64) ([]uint64, error) {
	st := make([]uint64, 2)
	copy(st, params)
	if err := g.f(st); err != nil {
		return nil, err
	}
	return st[:len(g.Definition().ResultTypes())], nil
}

// recordOutputSet is the kernel's output_set, noting what the guest asked
// for.
type recordOutputSet struct {
	api.Function
	in *instance
}

func (r *recordOutputSet) CallWithStack(ctx context.Context, stack []uint64) error {
	r.in.outSet, r.in.outOff, r.in.outLen = true, stack[0], stack[1]
	return r.Function.CallWithStack(ctx, stack)
}

func (r *recordOutputSet) Call(ctx context.Context, params ...uint64) ([]uint64, error) {
	st := make([]uint64, 2)
	copy(st, params)
	if err := r.CallWithStack(ctx, st); err != nil {
		return nil, err
	}
	return nil, nil
}

func (k *kernelModule) fn(name string) api.Function { return k.fns[name] }

// ExportedFunction returns the cached handle. Handles are not safe for
// concurrent use; an instance serves one call at a time.
func (k *kernelModule) ExportedFunction(name string) api.Function {
	if f, ok := k.fns[name]; ok {
		return f
	}
	return k.Module.ExportedFunction(name)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) reset() { t.b = t.b[:0] }

func (t *tailBuffer) String() string { return string(bytes.TrimSpace(t.b)) }
