package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/claimsmith/claimsmith/runtime/admin"
)

const adminKeyHelp = `Usage: claimsmith [--data-dir DIR] admin-key <command> [flags]

Manages the admin API keys of the server that runs on DIR. Keys are kept in
DIR/admin/keys.json as SHA-256 digests only (mode 0600), or, with
store.backend redis in --config, in Redis (shared by every node); the
secret is shown once, at creation. A running server picks up new and
revoked keys on its next request, so no restart is needed.

Commands:
  create --name NAME --scopes SCOPES   create a key and print its secret once
  list                                 list keys (id, name, scopes, created)
  revoke ID|NAME                       delete a key; it stops working at once

Scopes (comma-separated): read:authz (or read), write:authz (or write),
import, export, or all. A request with no key gets 401, with a key lacking
the endpoint's scope 403.

Use a key as a bearer token:
  curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/api/groups
or with the CLI: claimsmith groups list --server http://127.0.0.1:8080 --key $KEY
`

func runAdminKey(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(a.stdout, adminKeyHelp)
		if len(args) == 0 {
			return &exitError{code: 2}
		}
		return nil
	}
	fs := flag.NewFlagSet("admin-key "+args[0], flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), adminKeyHelp); fs.PrintDefaults() }
	var name, scopes *string
	switch args[0] {
	case "create":
		name = fs.String("name", "", "a name for the key, shown in audit records (required, unique)")
		scopes = fs.String("scopes", "", "comma-separated scopes: read, write, import, export, all (required)")
	case "list", "revoke":
	default:
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("unknown admin-key command %q", args[0])}
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2, err: err}
	}
	keys, err := openAdminKeys(ctx, a)
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		if fs.NArg() != 0 || *name == "" || *scopes == "" {
			fs.Usage()
			return &exitError{code: 2, err: errors.New("admin-key create needs --name and --scopes and no arguments")}
		}
		sc, err := admin.ParseScopes(*scopes)
		if err != nil {
			return err
		}
		k, secret, err := keys.Create(ctx, *name, sc)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "created admin key %s (%s) with scopes %s; the secret is shown only now:\n", k.ID, k.Name, strings.Join(k.Scopes, " "))
		fmt.Fprintln(a.stdout, secret)
		return nil
	case "list":
		if fs.NArg() != 0 {
			return &exitError{code: 2, err: errors.New("admin-key list takes no arguments")}
		}
		list, err := keys.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED")
		for _, k := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.Created.Format("2006-01-02T15:04:05Z"))
		}
		return tw.Flush()
	default: // revoke
		if fs.NArg() != 1 {
			return &exitError{code: 2, err: errors.New("admin-key revoke takes one ID or NAME")}
		}
		if err := keys.Revoke(ctx, fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "revoked admin key %s\n", fs.Arg(0))
		return nil
	}
}
