package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	extism "github.com/extism/go-sdk"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Host functions claimsmith gives every rule, in the module
// "extism:host/user" (the extism PDKs' default for user host functions).
// Strings travel as extism memory offsets (i64), as in every PDK. A failing
// look-up traps the guest, which fails the rule (its on_error applies).
//
//	log(level i32, msg i64)                            level 0 debug, 1 info, 2 warn, 3 error
//	config_get(key i64) -> i64                         0 when the key is not set
//	authz_is_member(user i64, group i64) -> i32        1 member, 0 not
//	authz_user_policy(user i64, client i64) -> i64     JSON {"groups":[…],"roles":[…],"permissions":[…]}
const hostNamespace = "extism:host/user"

// Limits on what one call may log through the host.
const (
	maxHostLogLines = 100
	maxHostLogBytes = 4096
	maxHostArgBytes = 4096
)

// Context keys extism's own host functions read.
var (
	keyKernel = extism.PluginCtxKey("extism")
	keyPlugin = extism.PluginCtxKey("plugin")
	keyInput  = extism.InputOffsetKey("inputOffset")
)

type callKey struct{}

// callCtx is the context of one guest call: it answers the values extism's
// host functions look up (the kernel — our cached-handle wrapper —, the
// plugin, the input offset) and leads host functions back to the instance,
// with one allocation instead of a chain of context.WithValue. It is never
// reused: wazero watches a call's context from another goroutine that may
// outlive the call. The mutable per-call state lives in the instance and is
// touched only by the worker goroutine.
type callCtx struct {
	context.Context
	in *instance
}

func (c *callCtx) Value(key any) any {
	switch key {
	case keyKernel:
		if c.in.kernel != nil {
			return c.in.kernel
		}
	case keyPlugin:
		return c.in.plugin
	case keyInput:
		if c.in.inputOffset != nil {
			return c.in.inputOffset
		}
	case callKey{}:
		return c
	}
	if c.Context == nil {
		return nil
	}
	return c.Context.Value(key)
}

func callFrom(ctx context.Context, p *extism.CurrentPlugin) *callCtx {
	if c, ok := ctx.(*callCtx); ok {
		return c
	}
	if c, ok := ctx.Value(callKey{}).(*callCtx); ok {
		return c
	}
	panic(errors.New("claimsmith host function called outside a rule call"))
}

// read returns the string in the extism memory block at off, refusing blocks
// longer than max bytes.
func (c *callCtx) read(off uint64, max int) (string, error) {
	in := c.in
	c.in.hstack[0] = off
	if err := in.k.length.CallWithStack(c, c.in.hstack[:]); err != nil {
		return "", err
	}
	n := c.in.hstack[0]
	if n > uint64(max) {
		return "", fmt.Errorf("%w: %d bytes, over %d", runtime.ErrTooLarge, n, max)
	}
	b, ok := in.kmem.Read(uint32(off), uint32(n))
	if !ok {
		return "", fmt.Errorf("block at %d (%d bytes) is outside the plugin's memory", off, n)
	}
	return string(b), nil
}

// write copies b into a new extism memory block and returns its offset.
func (c *callCtx) write(b []byte) (uint64, error) {
	in := c.in
	c.in.hstack[0] = uint64(len(b))
	if err := in.k.alloc.CallWithStack(c, c.in.hstack[:]); err != nil {
		return 0, err
	}
	off := c.in.hstack[0]
	if !in.kmem.Write(uint32(off), b) {
		return 0, fmt.Errorf("writing %d bytes at %d failed", len(b), off)
	}
	return off, nil
}

func (c *callCtx) arg(name string, off uint64) string {
	s, err := c.read(off, maxHostArgBytes)
	if err != nil {
		panic(fmt.Errorf("host function argument %s: %w", name, err))
	}
	return s
}

func (r *Rule) hostFunctions() []extism.HostFunction {
	i32, i64 := extism.ValueTypeI32, extism.ValueTypeI64
	fns := []extism.HostFunction{
		extism.NewHostFunctionWithStack("log", func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			callFrom(ctx, p).log(logLevel(int32(stack[0])), stack[1])
		}, []extism.ValueType{i32, i64}, nil),

		extism.NewHostFunctionWithStack("config_get", func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			c := callFrom(ctx, p)
			v, ok := r.config[c.arg("key", stack[0])]
			if !ok {
				stack[0] = 0
				return
			}
			off, err := c.write([]byte(v))
			if err != nil {
				panic(fmt.Errorf("config_get: %w", err))
			}
			stack[0] = off
		}, []extism.ValueType{i64}, []extism.ValueType{i64}),

		extism.NewHostFunctionWithStack("authz_is_member", func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			c := callFrom(ctx, p)
			user, group := c.arg("user", stack[0]), c.arg("group", stack[1])
			pol, err := r.resolve(c, user, c.in.query.ClientID)
			if err != nil {
				panic(fmt.Errorf("authz_is_member(%q, %q): %w", user, group, err))
			}
			stack[0] = 0
			if slices.Contains(pol.Groups, group) {
				stack[0] = 1
			}
		}, []extism.ValueType{i64, i64}, []extism.ValueType{i32}),

		extism.NewHostFunctionWithStack("authz_user_policy", func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			c := callFrom(ctx, p)
			user, client := c.arg("user", stack[0]), c.arg("client", stack[1])
			pol, err := r.resolve(c, user, client)
			if err != nil {
				panic(fmt.Errorf("authz_user_policy(%q, %q): %w", user, client, err))
			}
			b, err := json.Marshal(struct {
				Groups      []string `json:"groups"`
				Roles       []string `json:"roles"`
				Permissions []string `json:"permissions"`
			}{nonNil(pol.Groups), nonNil(pol.Roles), nonNil(pol.Permissions)})
			if err != nil {
				panic(fmt.Errorf("authz_user_policy: %w", err))
			}
			off, err := c.write(b)
			if err != nil {
				panic(fmt.Errorf("authz_user_policy: %w", err))
			}
			stack[0] = off
		}, []extism.ValueType{i64, i64}, []extism.ValueType{i64}),
	}
	// Stand-ins for extism:host/env's log functions (see redirects in
	// instrument.go): PDK log calls land in the rule's trace.
	for _, level := range []string{"trace", "debug", "info", "warn", "error"} {
		traceLevel := level
		if level == "trace" {
			traceLevel = "debug"
		}
		fns = append(fns, extism.NewHostFunctionWithStack("env_log_"+level, func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			c := callFrom(ctx, p)
			c.log(traceLevel, stack[0])
			c.free(stack[0])
		}, []extism.ValueType{i64}, nil))
	}
	fns = append(fns, extism.NewHostFunctionWithStack("env_get_log_level", func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
		stack[0] = 0 // everything: the lines are kept in the trace, not printed
	}, nil, []extism.ValueType{i32}))
	for i := range fns {
		fns[i].SetNamespace(hostNamespace)
	}
	return fns
}

// log records a guest log line (the string at off) in the call's trace.
func (c *callCtx) log(level string, off uint64) {
	msg, err := c.read(off, 1<<20)
	if err != nil {
		panic(fmt.Errorf("log: %w", err))
	}
	if len(msg) > maxHostLogBytes {
		msg = truncate(msg, maxHostLogBytes)
	}
	in := c.in
	if len(in.hostLogs) < maxHostLogLines {
		in.hostLogs = append(in.hostLogs, runtime.LogLine{Level: level, Msg: msg})
	}
	in.rule.log.Debug("wasm rule log", "level", level, "msg", msg)
}

// free releases an extism memory block the guest handed over.
func (c *callCtx) free(off uint64) {
	in := c.in
	in.hstack[0] = off
	_ = in.k.free.CallWithStack(c, in.hstack[:])
}

// resolve answers a look-up for user at client. For the user logging in, the
// login's connection and IdP groups apply (mappings), and the audience when
// the client is the login's; for anyone else only direct membership counts.
func (r *Rule) resolve(c *callCtx, user, client string) (authz.Policy, error) {
	if r.authz == nil {
		return authz.Policy{}, fmt.Errorf("%w: no authorization store is configured for wasm rules", runtime.ErrUnavailable)
	}
	q := authz.PolicyQuery{UserID: user, ClientID: client}
	if ev := c.in.query; user == ev.UserID {
		q.Connection, q.IdPGroups = ev.Connection, ev.IdPGroups
		if client == ev.ClientID {
			q.Audience = ev.Audience
		}
	}
	return r.authz.ResolvePolicy(c, q)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func logLevel(l int32) string {
	switch l {
	case 0:
		return "debug"
	case 2:
		return "warn"
	case 3:
		return "error"
	default:
		return "info"
	}
}

func truncate(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// extraHostFunctions wraps the HostFuncs of a Module given to Load.
func extraHostFunctions(hs []HostFunc) []extism.HostFunction {
	fns := make([]extism.HostFunction, 0, len(hs))
	for _, h := range hs {
		fn := extism.NewHostFunctionWithStack(h.Name, func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			c := callFrom(ctx, p)
			arg, err := c.read(stack[0], 1<<20)
			if err != nil {
				panic(fmt.Errorf("%s: %w", h.Name, err))
			}
			res, err := h.Fn(c, []byte(arg))
			if err != nil {
				panic(fmt.Errorf("%s: %w", h.Name, err))
			}
			stack[0] = 0
			if res != nil {
				if stack[0], err = c.write(res); err != nil {
					panic(fmt.Errorf("%s: %w", h.Name, err))
				}
			}
		}, []extism.ValueType{extism.ValueTypeI64}, []extism.ValueType{extism.ValueTypeI64})
		fn.SetNamespace(hostNamespace)
		fns = append(fns, fn)
	}
	return fns
}
