//go:build wasip1

// Command starter is the rule `make rule NAME=…` copies to start a new Go
// rule. Change rule below, then build and try it:
//
//	make rule NAME=starter
//	go run ./cmd/claimsmith test --config samples/rules/starter/claimsmith.yaml \
//	  --data samples/data/extension-export.json --event samples/events/employee.json
package main

import (
	"strings"

	"github.com/claimsmith/claimsmith/rules/sdk"
)

// on_login is called for every login (trigger post-login). Export
// on_credentials_exchange as well to run for machine-to-machine tokens.
//
//go:wasmexport on_login
func onLogin() int32 { return sdk.Run(rule) }

func rule(ev *sdk.Event, api *sdk.API) error {
	// Settings come from the rule's `config:` in claimsmith.yaml.
	greeting, ok := api.Host.Config("greeting")
	if !ok {
		greeting = "Hello"
	}
	// Deny with a reason: the login stops, the IdP shows access_denied.
	if strings.HasSuffix(ev.User.Email, "@blocked.example") {
		api.Access.Deny("accounts of blocked.example may not log in")
		return nil
	}
	// Claims need a namespace (an http(s) URL) unless the operator turns that off.
	api.IDToken.SetCustomClaim("https://example.com/greeting", greeting+", "+ev.User.Name)
	api.Log("info", "greeted %s", ev.User.UserID)
	return nil
}

func main() {}
