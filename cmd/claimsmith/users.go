package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
)

const usersHelp = `Usage: claimsmith [--data-dir DIR] users get USER_ID

Prints the profile claimsmith stores for the user: the app_metadata and
user_metadata objects that logins change by merge patches. A user never seen
has empty objects.
`

func runUsers(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("users", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usersHelp) }
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() != 2 || fs.Arg(0) != "get" || fs.Arg(1) == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("usage: users get USER_ID")}
	}
	st, err := openDataStore(ctx, a, true)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.Profile(ctx, fs.Arg(1))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(p)
}
