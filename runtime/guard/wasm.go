package guard

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/claimsmith/claimsmith/runtime"
)

// WasmVoter runs a WebAssembly rule as a voter, in the sandboxed runtime
// that runs login rules (runtime/wasm's loader, with its time and memory
// limits and pooled instances). The module's on_login export sees the
// request as a login event:
//
//	user.user_id          the token's sub
//	client.client_id      the token's client_id
//	client.metadata       {"resource", "path", "method"} of the request
//	authorization         the principal's groups, roles and permissions
//	request               ip, hostname, method and query
//	transaction           requested_scopes = the token's scopes, audience
//
// and its access vote (allow, deny, abstain) is the voter's; claims and
// metadata it sets are ignored. A rule that fails is a failed voter (deny).
type WasmVoter struct {
	name string
	rule runtime.Rule
	cmds sync.Pool
}

// NewWasmVoter compiles spec with loader (a *wasm.Loader).
func NewWasmVoter(ctx context.Context, loader runtime.ModuleLoader, spec runtime.ModuleSpec) (*WasmVoter, error) {
	if loader == nil {
		return nil, fmt.Errorf("%w: a WebAssembly voter needs a module loader", runtime.ErrInvalid)
	}
	r, err := loader.LoadModule(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("voter %q: %w", spec.Name, err)
	}
	v := &WasmVoter{name: spec.Name, rule: r}
	v.cmds.New = func() any { return new(runtime.Commands) }
	return v, nil
}

// Name implements the optional voter name.
func (v *WasmVoter) Name() string { return "wasm:" + v.name }

// Vote implements Voter.
func (v *WasmVoter) Vote(ctx context.Context, req *AuthzRequest) (Verdict, error) {
	p := req.Principal
	q := map[string]string{}
	if req.Query != "" {
		for _, kv := range strings.Split(req.Query, "&") {
			k, val, _ := strings.Cut(kv, "=")
			q[k] = val
		}
	}
	ev := &runtime.Event{
		Trigger: runtime.TriggerPostLogin,
		User:    runtime.User{UserID: p.Subject},
		Client: runtime.Client{ClientID: p.ClientID, Metadata: map[string]string{
			"resource": req.Resource, "path": req.Path, "method": req.Method}},
		Request:       runtime.Request{IP: req.RemoteIP, Hostname: req.Host, Method: req.Method, Query: q},
		Transaction:   runtime.Transaction{RequestedScopes: p.Scopes},
		Authorization: &runtime.Authorization{Groups: nonNil(p.Groups), Roles: nonNil(p.Roles), Permissions: nonNil(p.Permissions)},
	}
	if len(p.Audience) > 0 {
		ev.Transaction.Audience = p.Audience[0]
	}
	out := v.cmds.Get().(*runtime.Commands)
	defer v.cmds.Put(out)
	out.Reset()
	if err := v.rule.Run(ctx, ev, out); err != nil {
		return Verdict{}, err
	}
	return Verdict{Vote: out.Access.Vote, Reason: out.Access.Reason}, nil
}

// Close releases the module's instances.
func (v *WasmVoter) Close() error {
	if c, ok := v.rule.(runtime.CleanerUpper); ok {
		return c.Cleanup()
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
