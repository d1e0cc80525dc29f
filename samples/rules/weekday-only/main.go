//go:build wasip1

// Command weekday-only is a sample claimsmith rule written with the Go SDK:
// it denies logins on days the operator did not allow (config "days", a
// comma-separated list such as "Mon,Tue,Wed,Thu,Fri"; default Monday to
// Friday) in UTC, or in the fixed offset of config "utc_offset_hours".
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o weekday-only.wasm ./samples/rules/weekday-only
package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/rules/sdk"
)

//go:wasmexport on_login
func onLogin() int32 { return sdk.Run(rule) }

func rule(ev *sdk.Event, api *sdk.API) error {
	days := "Mon,Tue,Wed,Thu,Fri"
	if v, ok := api.Host.Config("days"); ok {
		days = v
	}
	now := time.Now().UTC()
	if v, ok := api.Host.Config("utc_offset_hours"); ok {
		h, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || h < -14 || h > 14 {
			return fmt.Errorf("config utc_offset_hours: %q is not a whole number of hours between -14 and 14", v)
		}
		now = now.Add(time.Duration(h) * time.Hour)
	}
	today := now.Weekday().String()[:3]
	for _, d := range strings.Split(days, ",") {
		if strings.EqualFold(strings.TrimSpace(d), today) {
			api.Log("debug", "%s is an allowed day", today)
			return nil
		}
	}
	api.Access.Deny(fmt.Sprintf("logins to %s are not allowed on %s", ev.Client.Name, now.Weekday()))
	return nil
}

func main() {}
