package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

const policyHelp = `Usage: claimsmith [--data-dir DIR] policy --user USER_ID --client CLIENT_ID [flags]

Prints, as JSON, the groups, roles and permissions the user gets at login,
resolved from the data directory exactly as the Auth0 Authorization
Extension's policy endpoint resolves them: direct groups, groups mapped from
the connection's groups (--connection, --groups), every ancestor group,
roles of those groups and directly assigned roles kept for the client (and,
with --audience, roles bound to that API), permissions of the kept roles.

Flags:
`

func runPolicy(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var q authz.PolicyQuery
	fs.StringVar(&q.UserID, "user", "", "user id, exact and case-sensitive (e.g. auth0|alice) (required)")
	fs.StringVar(&q.ClientID, "client", "", "client id of the application logged in to (required)")
	fs.StringVar(&q.Audience, "audience", "", "API audience of the access token: roles bound to it (resource_server) apply too")
	fs.StringVar(&q.Connection, "connection", "", "connection name; group mappings apply only with it")
	groups := fs.String("groups", "", "comma-separated groups the connection reported for the user")
	fs.Usage = func() { fmt.Fprint(fs.Output(), policyHelp); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if q.UserID == "" || q.ClientID == "" || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--user and --client are required, and nothing else may follow the flags")}
	}
	for _, g := range strings.Split(*groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			q.IdPGroups = append(q.IdPGroups, g)
		}
	}
	st, err := openDataStore(ctx, a, true)
	if err != nil {
		return err
	}
	defer st.Close()
	pol, err := st.ResolvePolicy(ctx, q)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(pol)
}
