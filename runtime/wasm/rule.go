package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Rule is a loaded WebAssembly rule: one compiled module and a pool of warm
// instances. It implements runtime.Rule and runtime.CleanerUpper. Each call
// borrows an instance; an instance that failed in any way (error, trap,
// timeout, bad output) is closed and replaced in the background, never
// reused.
type Rule struct {
	name, path   string
	timeout      time.Duration
	initTimeout  time.Duration
	maxOutput    int
	maxStuck     int32
	log          *slog.Logger
	authz        PolicyResolver
	config       map[string]string
	moduleBytes  int
	compiled     *extism.CompiledPlugin
	moduleConfig wazero.ModuleConfig
	poolSize     int
	pool         chan *instance

	// stuck counts abandoned calls and initialisers still running;
	// initFailures counts replacement instances in a row that could not be
	// made. disabled is set for good once either reaches maxStuck, with the
	// reason in disabledErr.
	stuck        atomic.Int32
	initFailures atomic.Int32
	disabled     atomic.Bool
	disabledErr  atomic.Pointer[error]
	closed       atomic.Bool
	// bgCtx bounds replacement instantiations; Cleanup cancels it. bg tracks
	// them, so Cleanup can wait for them.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	// live is the loader's count of instance workers (tests watch it to
	// see that a stopped guest's goroutine really ended).
	live, open *atomic.Int64
	// workers counts live instances (their worker goroutines): the compiled
	// module's code must stay mapped until the last call on it returned.
	workers sync.WaitGroup

	calls, failures, timeouts, discarded atomic.Uint64
}

var (
	_ runtime.Rule         = (*Rule)(nil)
	_ runtime.CleanerUpper = (*Rule)(nil)
)

// Status is a rule's health, for logs, metrics and `claimsmith check`.
type Status struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	PoolSize int    `json:"pool_size"`
	// Disabled is true once MaxAbandoned timed-out calls were still running
	// at the same time; the rule then fails every call until reloaded.
	Disabled bool `json:"disabled"`
	// Abandoned is the number of timed-out calls still running.
	Abandoned int    `json:"abandoned"`
	Calls     uint64 `json:"calls"`
	Failures  uint64 `json:"failures"`
	Timeouts  uint64 `json:"timeouts"`
	// Discarded counts instances closed after a failure and replaced.
	Discarded uint64 `json:"discarded"`
	// InitFailures counts replacement instances in a row that could not be
	// made (their initialisers failed or overran); MaxAbandoned of them
	// disable the rule.
	InitFailures int `json:"init_failures"`
}

// Status reports the rule's health.
func (r *Rule) Status() Status {
	return Status{
		Name: r.name, Path: r.path, PoolSize: r.poolSize,
		Disabled: r.disabled.Load(), Abandoned: int(r.stuck.Load()),
		Calls: r.calls.Load(), Failures: r.failures.Load(), Timeouts: r.timeouts.Load(),
		Discarded: r.discarded.Load(), InitFailures: int(r.initFailures.Load()),
	}
}

// Name is the rule's name from its spec.
func (r *Rule) Name() string { return r.name }

// ErrDisabled is the cause of every call to a rule disabled after too many
// stuck calls. It matches runtime.ErrUnavailable.
var ErrDisabled = fmt.Errorf("%w: rule disabled", runtime.ErrUnavailable)

// Run calls the export for ev.Trigger (on_login, or on_credentials_exchange
// for the credentials-exchange trigger) with the JSON event and decodes its
// JSON commands into out. A module without the trigger's export abstains.
// Failures are *runtime.RuleError naming the rule.
func (r *Rule) Run(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error {
	return r.Call(ctx, ev, nil, 0, out)
}

// Call is Run with the guest's input given (input, JSON-encoded; nil: the
// event) and the call's own timeout (0: the rule's). ev still picks the
// export and gives the authz host functions their query. An engine module
// serving several rules (runtime/js) calls it with the rule to run.
func (r *Rule) Call(ctx context.Context, ev *runtime.Event, input any, timeout time.Duration, out *runtime.Commands) error {
	if timeout <= 0 {
		timeout = r.timeout
	}
	if r.disabled.Load() {
		if p := r.disabledErr.Load(); p != nil {
			return r.fail(*p)
		}
		return r.fail(ErrDisabled)
	}
	if r.closed.Load() {
		return r.fail(fmt.Errorf("%w: rule was cleaned up", runtime.ErrUnavailable))
	}
	r.calls.Add(1)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var in *instance
	select {
	case in = <-r.pool:
	case <-ctx.Done():
		r.timeouts.Add(1)
		return r.fail(fmt.Errorf("%w: no free instance within %v (pool of %d)", runtime.ErrTimeout, timeout, r.poolSize))
	}
	fn := in.onLogin
	export := ExportLogin
	if ev.Trigger == runtime.TriggerCredentialsExchange {
		fn, export = in.onCredentials, ExportCredentials
	}
	if fn == nil {
		r.put(in)
		return nil
	}
	in.input.Reset()
	in.hostLogs = in.hostLogs[:0]
	in.groups = append(in.groups[:0], ev.User.Groups...)
	in.query = authz.PolicyQuery{
		UserID: ev.User.UserID, ClientID: ev.Client.ClientID, Audience: ev.Transaction.Audience,
		Connection: ev.Connection.Name, IdPGroups: in.groups,
	}
	if input == nil {
		input = ev
	}
	if err := in.enc.Encode(input); err != nil {
		r.put(in)
		return r.fail(fmt.Errorf("encoding the event: %w", err))
	}

	in.req <- callReq{ctx: ctx, fn: fn, export: export}
	select {
	case res := <-in.res:
		if res.err != nil {
			r.discard(in, res.err)
			return r.fail(res.err)
		}
		if err := decodeCommands(in.output, out); err != nil {
			out.Reset()
			err = fmt.Errorf("%s output: %w", export, err)
			r.discard(in, err)
			return r.fail(err)
		}
		out.Log = append(out.Log, in.hostLogs...)
		r.put(in)
		return nil
	case <-ctx.Done():
		r.abandon(in)
		r.timeouts.Add(1)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return r.fail(fmt.Errorf("%w: %s did not return within %v", runtime.ErrTimeout, export, timeout))
		}
		return r.fail(fmt.Errorf("%s: %w", export, ctx.Err()))
	}
}

// put returns a healthy instance to the pool, or closes it when the rule
// was cleaned up meanwhile.
func (r *Rule) put(in *instance) {
	if r.closed.Load() {
		in.close()
		return
	}
	r.pool <- in
}

func (r *Rule) fail(err error) error {
	r.failures.Add(1)
	return &runtime.RuleError{Rule: r.name, Cause: err}
}

// discard closes a failed instance and starts a replacement in the
// background, so the pool stays full without instantiating on a login.
func (r *Rule) discard(in *instance, why error) {
	r.discarded.Add(1)
	r.log.Debug("wasm instance discarded", "reason", why)
	close(in.req) // the worker closes the instance
	r.replace()
}

// abandon gives up on a call that is still running: it sets the instance's
// stop flag, the guest traps at its next check (every loop header and
// function entry, see instrument.go), and the worker then closes the
// instance. Until it does, the call counts as stuck; too many stuck calls at
// once disable the rule, which bounds the CPU a hostile module can keep busy.
func (r *Rule) abandon(in *instance) {
	r.discarded.Add(1)
	r.stopStuck(in, "calls")
	r.replace()
}

// abandonInit gives up on an instance whose initialisers overran their
// deadline, as abandon does for a call.
func (r *Rule) abandonInit(in *instance) { r.stopStuck(in, "initialisers") }

func (r *Rule) stopStuck(in *instance, what string) {
	if in.stop != nil {
		in.stop.Set(1)
	}
	in.abandoned.Store(true)
	n := r.stuck.Add(1)
	if n >= r.maxStuck {
		r.disable(fmt.Errorf("%w: %d %s were still running past their deadline (call timeout %v); fix the module and reload",
			ErrDisabled, n, what, r.timeout))
	}
	close(in.req)
}

// disable turns the rule off until it is reloaded; the first reason stays.
func (r *Rule) disable(why error) {
	if r.disabled.Load() {
		return
	}
	if r.disabledErr.CompareAndSwap(nil, &why) {
		r.disabled.Store(true)
		r.log.Error("wasm rule disabled", "reason", why, "path", r.path)
	}
}

// maxReplaceBackoff caps the wait between two failed replacement attempts.
const maxReplaceBackoff = 30 * time.Second

// replace makes a new instance in the background. A failed attempt is
// retried after a growing pause; maxStuck failures in a row disable the
// rule, so a module whose initialisers fail (or loop) only on later
// instantiations cannot keep a core busy making instances.
func (r *Rule) replace() {
	if r.closed.Load() {
		return
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		pause := r.initTimeout
		for {
			if r.closed.Load() || r.disabled.Load() {
				return
			}
			in, err := r.newInstance(r.bgCtx)
			if err == nil {
				r.initFailures.Store(0)
				r.put(in)
				return
			}
			if r.bgCtx.Err() != nil {
				return
			}
			n := r.initFailures.Add(1)
			r.log.Error("wasm instance replacement failed; the pool is one instance short", "err", err, "failures_in_a_row", n)
			if n >= r.maxStuck {
				r.disable(fmt.Errorf("%w: %d replacement instances in a row could not be made, the last: %w; fix the module and reload",
					ErrDisabled, n, err))
				return
			}
			select {
			case <-r.bgCtx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, maxReplaceBackoff)
		}
	}()
}

// Recycle replaces every instance with a fresh one, waiting for each to be
// free: an engine serving several rules (runtime/js) gives back what
// instances kept for rules that are gone.
func (r *Rule) Recycle(ctx context.Context) error {
	for i := 0; i < r.poolSize; i++ {
		var old *instance
		select {
		case old = <-r.pool:
		case <-ctx.Done():
			return ctx.Err()
		}
		old.close()
		in, err := r.newInstance(ctx)
		if err != nil {
			r.replace()
			return err
		}
		r.put(in)
	}
	return nil
}

// Cleanup closes every idle instance, and the compiled module once no call
// runs on it any more: unmapping code a guest still executes would crash the
// process. Calls in flight finish on their own and close their instances;
// if some are still running after a second (an abandoned call stuck in a
// host function), the module is closed later, when they return.
func (r *Rule) Cleanup() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.bgCancel()
	r.bg.Wait()
	for drained := false; !drained; {
		select {
		case in := <-r.pool:
			in.close()
		default:
			drained = true
		}
	}
	done := make(chan error, 1)
	go func() {
		r.workers.Wait()
		err := r.compiled.Close(context.Background())
		if r.open != nil {
			r.open.Add(-1)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Second):
		r.log.Warn("wasm rule cleaned up with calls still running; its module is closed when they return",
			"abandoned", r.stuck.Load())
		return nil
	}
}

// describeCallError turns a wazero/extism call error into a rule error cause.
func describeCallError(export string, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return fmt.Errorf("%w: %s stopped at its deadline", runtime.ErrTimeout, export)
		case sys.ExitCodeContextCanceled:
			return fmt.Errorf("%s: %w", export, context.Canceled)
		}
		return fmt.Errorf("%s: guest exited with status %d", export, exit.ExitCode())
	}
	return fmt.Errorf("%s trapped: %w", export, err)
}
