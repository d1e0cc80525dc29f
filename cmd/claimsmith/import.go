package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
)

// openDataStore opens the file store in --data-dir. Read-only commands pass
// mustExist so a mistyped directory is reported instead of created empty.
func openDataStore(ctx context.Context, a *app, mustExist bool) (*file.Store, error) {
	if mustExist {
		if _, err := os.Stat(a.dataDir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data dir %s does not exist (import data first, or pass --data-dir)", a.dataDir)
		}
	}
	return file.Open(ctx, a.dataDir, file.Options{Logger: a.log})
}

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
dir is changed directly, which is refused while a server owns it.

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
	releaseDir, err := lockDataDirForCommand(ctx, a.dataDir, "import")
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
	rev, err := st.Apply(ctx, *expect, &authz.ReplaceDocument{Doc: doc})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := auditDirectImport(ctx, a, doc, rev); err != nil {
		a.log.Error("import committed but its audit record was not written", "revision", rev, "err", err)
	}
	p.Done()
	fmt.Fprintf(a.stdout, "imported %s: %s; store %s at revision %d\n", name, summary, a.dataDir, rev)
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
