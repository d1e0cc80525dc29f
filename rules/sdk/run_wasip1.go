//go:build wasip1

package sdk

import (
	"encoding/json"
	"fmt"

	pdk "github.com/extism/go-pdk"
)

// Run is the body of an exported rule function: it reads the event from the
// extism input, runs rule, writes the commands as the output and returns 0;
// on an error it sets the extism error and returns 1 (claimsmith reports a
// rule error naming the rule).
//
//	//go:wasmexport on_login
//	func onLogin() int32 { return sdk.Run(rule) }
func Run(rule Func) int32 {
	out, err := Handle(pdk.Input(), wasmHost{}, rule)
	if err != nil {
		pdk.SetError(err)
		return 1
	}
	pdk.Output(out)
	return 0
}

// Host functions claimsmith provides (module "extism:host/user"); see
// samples/rules/README.md for their ABI.
//
//go:wasmimport extism:host/user log
func hostLog(level int32, msg uint64)

//go:wasmimport extism:host/user config_get
func hostConfigGet(key uint64) uint64

//go:wasmimport extism:host/user authz_is_member
func hostIsMember(user, group uint64) int32

//go:wasmimport extism:host/user authz_user_policy
func hostUserPolicy(user, client uint64) uint64

// wasmHost calls claimsmith's host functions.
type wasmHost struct{}

func (wasmHost) Config(key string) (string, bool) {
	k := pdk.AllocateString(key)
	defer k.Free()
	off := hostConfigGet(k.Offset())
	if off == 0 {
		return "", false
	}
	m := pdk.FindMemory(off)
	defer m.Free()
	return string(m.ReadBytes()), true
}

func (wasmHost) IsMember(user, group string) (bool, error) {
	u, g := pdk.AllocateString(user), pdk.AllocateString(group)
	defer u.Free()
	defer g.Free()
	switch r := hostIsMember(u.Offset(), g.Offset()); r {
	case 0:
		return false, nil
	case 1:
		return true, nil
	default:
		return false, fmt.Errorf("sdk: authz_is_member answered %d", r)
	}
}

func (wasmHost) UserPolicy(user, client string) (Authorization, error) {
	u, c := pdk.AllocateString(user), pdk.AllocateString(client)
	defer u.Free()
	defer c.Free()
	off := hostUserPolicy(u.Offset(), c.Offset())
	if off == 0 {
		return Authorization{}, fmt.Errorf("sdk: authz_user_policy returned nothing")
	}
	m := pdk.FindMemory(off)
	defer m.Free()
	var p Authorization
	if err := json.Unmarshal(m.ReadBytes(), &p); err != nil {
		return Authorization{}, fmt.Errorf("sdk: authz_user_policy: %w", err)
	}
	return p, nil
}

func (wasmHost) Log(level, msg string) {
	m := pdk.AllocateString(msg)
	defer m.Free()
	hostLog(logLevel(level), m.Offset())
}

func logLevel(level string) int32 {
	switch level {
	case "debug":
		return 0
	case "warn":
		return 2
	case "error":
		return 3
	default:
		return 1
	}
}
