package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

const importHelp = `Usage: claimsmith [--data-dir DIR] import [flags] FILE|-

Replaces the authorization data in the data directory with an Auth0
Authorization Extension export (top-level configuration, groups, roles,
permissions; legacy applications and rules are ignored) or a
'claimsmith export --full' backup, read from FILE or, with -, from stdin.

The whole file is validated before anything changes: an invalid file changes
nothing and the error names the entity, its _id and the field. Ids are kept;
nothing is merged. Applications and user profiles are replaced only when the
file has a claimsmith section listing them. Large files show a progress bar
on a terminal and progress lines otherwise.

With --server URL --key KEY the file goes to a running server's admin API
(POST /api/import, key scope import), audited there. Without them the data
dir is changed directly, which is refused while a server owns it. With
store.backend redis in --config, the Redis store is loaded directly instead
(pipelined batches into a new generation of keys, switched atomically;
running servers keep answering from the old one until the switch and drop
their cached policies right after it).

Flags:
`

func runImport(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	dryRun := fs.Bool("dry-run", false, "validate the file and print what it holds, change nothing")
	expect := fs.Uint64("expect-revision", 0, "fail with a conflict unless the store is at this revision (0: no check)")
	var target adminTarget
	addTargetFlags(fs, &target)
	fs.Usage = func() { fmt.Fprint(fs.Output(), importHelp); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("import needs exactly one FILE (or - for stdin)")}
	}
	name := fs.Arg(0)
	var r io.Reader = a.stdin
	var total int64
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			total = fi.Size()
		}
		r = f
	} else {
		name = "stdin"
	}
	p := newProgress(a.stderr, "import "+name, total)
	b, err := io.ReadAll(&progressReader{r: r, p: p})
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	p.Step("validating")
	doc, err := authz.ParseDocument(b)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	summary := describe(doc)
	if *dryRun {
		fmt.Fprintf(a.stdout, "%s is valid: %s (nothing imported)\n", name, summary)
		return nil
	}
	if target.server != "" {
		p.Step("sending to " + target.server)
		return importViaServer(ctx, a, target, name, b, *expect)
	}
	releaseDir, err := lockForCommand(ctx, a, "import")
	if err != nil {
		return err
	}
	defer releaseDir()
	st, err := openDataStore(ctx, a, false)
	if err != nil {
		return err
	}
	defer st.Close()
	p.Step("committing")
	rev, err := importInto(ctx, a, st, *expect, doc, "import "+name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := auditDirectImport(ctx, a, doc, rev); err != nil {
		a.log.Error("import committed but its audit record was not written", "revision", rev, "err", err)
	}
	p.Done()
	fmt.Fprintf(a.stdout, "imported %s: %s; store %s at revision %d\n", name, summary, storeName(a), rev)
	return nil
}

func describe(d *authz.Document) string {
	s := count(len(d.Groups), "group") + ", " + count(len(d.Roles), "role") + ", " + count(len(d.Permissions), "permission")
	if d.Claimsmith != nil {
		s += ", " + count(len(d.Claimsmith.Applications), "application")
		if d.Claimsmith.Profiles != nil {
			s += ", " + count(len(d.Claimsmith.Profiles), "profile")
		}
	}
	return s
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
