//go:build wasip1

// Command hostile is a test guest for runtime/wasm's safety tests: one
// export per misbehaviour, chosen by the config key "mode".
package main

import (
	"os"
	"strings"

	pdk "github.com/extism/go-pdk"

	"github.com/claimsmith/claimsmith/rules/sdk"
)

//go:wasmexport on_login
func onLogin() int32 { return sdk.Run(rule) }

//go:wasmexport on_credentials_exchange
func onCredentials() int32 {
	return sdk.Run(func(ev *sdk.Event, api *sdk.API) error {
		api.AccessToken.SetCustomClaim("https://example.com/m2m", ev.Client.ClientID)
		return nil
	})
}

var keep [][]byte

func rule(ev *sdk.Event, api *sdk.API) error {
	mode, _ := api.Host.Config("mode")
	switch mode {
	case "panic":
		panic("guest panics on purpose")
	case "membomb":
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	case "restricted":
		api.IDToken.SetCustomClaim("sub", "someone-else")
	case "http":
		url, _ := api.Host.Config("url")
		res := pdk.NewHTTPRequest(pdk.MethodGet, url).Send()
		api.IDToken.SetCustomClaim("https://example.com/http", string(res.Body()))
	case "fs":
		_, err := os.ReadFile("/etc/hostname")
		msg := "read succeeded"
		if err != nil {
			msg = err.Error()
		}
		entries, derr := os.ReadDir("/")
		api.IDToken.SetCustomClaim("https://example.com/fs", msg)
		api.IDToken.SetCustomClaim("https://example.com/root_entries", len(entries))
		if derr != nil {
			api.IDToken.SetCustomClaim("https://example.com/readdir", derr.Error())
		}
	case "garbage":
		// Allocates and drops about 25 KiB per call, so a guest whose
		// garbage collector stopped would run out of memory quickly.
		var s []string
		for i := 0; i < 200; i++ {
			s = append(s, strings.Repeat("x", 100))
		}
		api.IDToken.SetCustomClaim("https://example.com/n", len(s))
	default:
		api.Log("info", "mode %q: nothing to do", mode)
	}
	return nil
}

func main() {}
