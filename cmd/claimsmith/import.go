package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/claimsmith/claimsmith/runtime/admin"
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

An import that would remove groups, roles, permissions or applications the
store holds is refused unless --replace confirms it; --dry-run validates the
file and lists what it would add, remove and change, changing nothing.

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
	dryRun := fs.Bool("dry-run", false, "validate the file and print what it would add, remove and change; change nothing")
	replace := fs.Bool("replace", false, "confirm an import that removes entities the store holds")
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
		return previewImport(ctx, a, target, name, doc, b, summary)
	}
	if target.server != "" {
		p.Step("sending to " + target.server)
		return importViaServer(ctx, a, target, name, b, *expect, *replace)
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
	audit, err := openAuditLog(ctx, a)
	if err != nil {
		return err
	}
	// The command prints its own summary; the service's per-write info
	// line would repeat it on stderr, where the progress goes.
	svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: audit, Log: slog.New(warnFloor{a.log.Handler()})})
	if err != nil {
		return err
	}
	p.Step("committing")
	rev, err := importInto(ctx, a, svc, st, *expect, *replace, doc, "import "+name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	p.Done()
	fmt.Fprintf(a.stdout, "imported %s: %s; store %s at revision %d\n", name, summary, storeName(a), rev)
	return nil
}

// previewImport is --dry-run: the file is valid (checked by the caller);
// against a reachable store it also lists what the import would change.
func previewImport(ctx context.Context, a *app, target adminTarget, name string, doc *authz.Document, raw []byte, summary string) error {
	var plan admin.ImportPlan
	if target.server != "" {
		c, err := openAdminClient(ctx, a, target, "import", false)
		if err != nil {
			return err
		}
		defer c.close()
		if _, err := c.callWith(ctx, http.MethodPost, "/api/import?dry_run=true", bytes.NewReader(raw), &plan, ""); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	} else {
		st, err := openDataStore(ctx, a, true)
		if err != nil {
			// No store yet: nothing would be removed.
			fmt.Fprintf(a.stdout, "%s is valid: %s (nothing imported; no store to compare with: %v)\n", name, summary, err)
			return nil
		}
		defer st.Close()
		m, err := st.Snapshot(ctx)
		if err != nil {
			return err
		}
		plan = admin.PlanImport(m.Document(), doc, m.Revision())
	}
	fmt.Fprintf(a.stdout, "%s is valid: %s (nothing imported)\n", name, summary)
	for _, d := range []struct {
		noun string
		diff admin.EntityDiff
	}{{"groups", plan.Groups}, {"roles", plan.Roles}, {"permissions", plan.Permissions}, {"applications", plan.Applications}} {
		fmt.Fprintf(a.stdout, "%-13s %d added, %d removed, %d changed, %d unchanged\n", d.noun+":", len(d.diff.Added), len(d.diff.Removed), len(d.diff.Changed), d.diff.Unchanged)
		for _, l := range []struct {
			sign string
			ids  []string
		}{{"+", d.diff.Added}, {"-", d.diff.Removed}, {"~", d.diff.Changed}} {
			for _, id := range l.ids {
				fmt.Fprintf(a.stdout, "  %s %s\n", l.sign, id)
			}
		}
	}
	if plan.Destructive() {
		fmt.Fprintf(a.stdout, "the import removes %s: it needs --replace\n", plan.Removals())
	}
	return nil
}

// warnFloor passes on warnings and errors only.
type warnFloor struct{ slog.Handler }

func (h warnFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnFloor) WithAttrs(as []slog.Attr) slog.Handler { return warnFloor{h.Handler.WithAttrs(as)} }
func (h warnFloor) WithGroup(n string) slog.Handler       { return warnFloor{h.Handler.WithGroup(n)} }

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
