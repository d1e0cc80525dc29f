//go:build wasip1

// Command department-claims is a sample claimsmith rule that asks the host's
// authorization store: it puts the user's departments (their groups named
// "dept-<name>") and whether they are a contractor (member of the group named
// by config "contractor_group", default "Contractors") into namespaced claims
// on both tokens. The namespace is config "namespace" (default
// https://example.com/).
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o department-claims.wasm ./samples/rules/department-claims
package main

import (
	"strings"

	"github.com/claimsmith/claimsmith/rules/sdk"
)

//go:wasmexport on_login
func onLogin() int32 { return sdk.Run(rule) }

func rule(ev *sdk.Event, api *sdk.API) error {
	ns := "https://example.com/"
	if v, ok := api.Host.Config("namespace"); ok {
		ns = v
	}
	contractors := "Contractors"
	if v, ok := api.Host.Config("contractor_group"); ok {
		contractors = v
	}
	pol, err := api.Host.UserPolicy(ev.User.UserID, ev.Client.ClientID)
	if err != nil {
		return err
	}
	depts := []string{}
	for _, g := range pol.Groups {
		if d, ok := strings.CutPrefix(g, "dept-"); ok {
			depts = append(depts, d)
		}
	}
	contractor, err := api.Host.IsMember(ev.User.UserID, contractors)
	if err != nil {
		return err
	}
	api.IDToken.SetCustomClaim(ns+"departments", depts)
	api.AccessToken.SetCustomClaim(ns+"departments", depts)
	api.IDToken.SetCustomClaim(ns+"contractor", contractor)
	api.Log("info", "user %s: %d departments, contractor=%t", ev.User.UserID, len(depts), contractor)
	return nil
}

func main() {}
