package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

const exportHelp = `Usage: claimsmith [--data-dir DIR] export [flags] [FILE|-]

Writes the authorization data of the data directory (or of the Redis store
with store.backend redis in --config) in the Auth0 Authorization
Extension's export format (configuration, groups, roles, permissions), to
FILE or, without FILE or with -, to stdout. The extension
imports it unchanged, and so does 'claimsmith import': an export imported
into an empty store exports to the same bytes.

--full adds a claimsmith section with applications and user profiles, for
backups (the extension does not know that section). A FILE is replaced
atomically. Large exports show a progress bar on a terminal.

Flags:
`

func runExport(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	full := fs.Bool("full", false, "also export applications and user profiles (claimsmith section)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), exportHelp); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("export takes at most one FILE")}
	}
	st, err := openDataStore(ctx, a, true)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := st.Snapshot(ctx)
	if err != nil {
		return err
	}
	opt := authz.ExportOptions{Full: *full}
	if *full {
		if opt.Profiles, err = authz.CollectProfiles(ctx, st); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := authz.Encode(&buf, m.Document(), opt); err != nil {
		return err
	}
	name := fs.Arg(0)
	if name == "" || name == "-" {
		p := newProgress(a.stderr, "export", int64(buf.Len()))
		_, err := io.Copy(&progressWriter{w: a.stdout, p: p}, &buf)
		p.Done()
		return err
	}
	p := newProgress(a.stderr, "export "+name, int64(buf.Len()))
	// Replaced atomically, so an interrupted export never leaves a
	// truncated backup behind.
	if err := setup.WriteFileAtomic(name, &progressReader{r: &buf, p: p}, 0o600); err != nil {
		return err
	}
	p.Done()
	fmt.Fprintf(a.stderr, "exported revision %d to %s\n", m.Revision(), name)
	return nil
}
