package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

// The commands reach their configuration and data through runtime/setup:
// the file is read once per command (a.config), and the stores it names
// are opened through one setup.Backends per command (a.backends), closed
// when the command ends.

// config is --config, loaded once; setup.Default() without a file.
func (a *app) config() (*setup.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	if a.configPath == "" {
		a.cfg = setup.Default()
		return a.cfg, nil
	}
	c, err := setup.Load(a.configPath)
	if err != nil {
		return nil, err
	}
	a.cfg = c
	return c, nil
}

// env is what setup needs of the command: the data dir, the environment
// and the logger.
func (a *app) env() setup.Env {
	return setup.Env{DataDir: a.dataDir, Getenv: os.Getenv, Log: a.log}
}

// backends opens (once per command) the backends of --config.
func (a *app) backends() (*setup.Backends, error) {
	if a.bk != nil {
		return a.bk, nil
	}
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	b, err := setup.OpenBackends(cfg, a.env())
	if err != nil {
		return nil, err
	}
	a.bk = b
	return b, nil
}

// close releases what the command opened through setup.
func (a *app) close() {
	if a.bk != nil {
		_ = a.bk.Close()
	}
}

// openDataStore opens the configured store for a CLI command: the file
// store in --data-dir, or the Redis store of the redis section. Writes
// notify running servers' policy caches when the cache has a Redis.
func openDataStore(ctx context.Context, a *app, mustExist bool) (setup.DataStore, error) {
	b, err := a.backends()
	if err != nil {
		return nil, err
	}
	return b.CommandStore(ctx, mustExist)
}

// lockForCommand takes the data dir's owner lock for a CLI command that
// writes the store directly (nothing for a shared store).
func lockForCommand(ctx context.Context, a *app, command string) (func(), error) {
	b, err := a.backends()
	if err != nil {
		return nil, err
	}
	return b.LockForCommand(ctx, command)
}

// storeName names the configured store in messages: the data dir, or
// "redis ADDRS".
func storeName(a *app) string {
	b, err := a.backends()
	if err != nil {
		return a.dataDir
	}
	return b.Describe()
}

// openAuditLog is the admin audit log of the configured backend, for CLI
// commands.
func openAuditLog(ctx context.Context, a *app) (admin.AuditLog, error) {
	b, err := a.backends()
	if err != nil {
		return nil, err
	}
	as, err := b.Admin(ctx)
	return as.Audit, err
}

// openAdminKeys is the admin key store of the configured backend, for
// `claimsmith admin-key`.
func openAdminKeys(ctx context.Context, a *app) (admin.KeyStore, error) {
	b, err := a.backends()
	if err != nil {
		return nil, err
	}
	as, err := b.Admin(ctx)
	return as.Keys, err
}

// importInto replaces the store's model with doc as the OS user: through
// the admin service (the same guard against removing entities without
// replace, and the audit record written ahead, so a crash cannot leave the
// import unaudited), or with the Redis store's pipelined bulk loader,
// showing how many commands were written, guarded and audited the same way.
func importInto(ctx context.Context, a *app, svc *admin.Service, st setup.DataStore, expected uint64, replace bool, doc *authz.Document, label string) (uint64, error) {
	im, ok := st.(setup.Importer)
	if !ok {
		var m admin.IfMatch
		if expected != 0 {
			m = admin.Expect(expected)
		}
		res, err := svc.Apply(ctx, admin.Caller{KeyID: "local", KeyName: cliKeyName()}, admin.ImportChange(doc, replace), m)
		return res.Revision, err
	}
	plan, err := svc.PlanImport(ctx, doc)
	if err != nil {
		return 0, err
	}
	if expected != 0 && plan.Revision != expected {
		return 0, &runtime.ConflictError{Expected: expected, Actual: plan.Revision}
	}
	if !replace && plan.Destructive() {
		return 0, &admin.DestructiveImportError{Plan: plan}
	}
	if expected == 0 && !replace {
		// The check above holds only if nothing changed since.
		expected = plan.Revision
	}
	p := newCountProgress(a.stderr, label, "commands")
	defer p.done()
	rev, err := im.Import(ctx, expected, doc, p.update)
	if err != nil {
		return 0, err
	}
	if err := auditDirectImport(ctx, a, doc, rev); err != nil {
		a.log.Error("import committed but its audit record was not written", "revision", rev, "err", err)
	}
	return rev, nil
}

// countProgress shows a count of done items out of a total: a redrawn bar
// on a terminal, a line per quarter otherwise, nothing for small totals
// (they finish before a bar is readable).
type countProgress struct {
	w           io.Writer
	label, unit string
	tty         bool
	last        time.Time
	marked      int
	shown       bool
	d, t        int
}

// countProgressThreshold is the total from which progress is shown.
const countProgressThreshold = 20000

func newCountProgress(w io.Writer, label, unit string) *countProgress {
	p := &countProgress{w: w, label: label, unit: unit}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// update is the loader's callback: done of total items written.
func (p *countProgress) update(done, total int) {
	p.d, p.t = done, total
	if total < countProgressThreshold || total <= 0 {
		return
	}
	if p.tty {
		if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || done == total {
			p.last, p.shown = now, true
			fmt.Fprintf(p.w, "\r%s", p.bar())
		}
		return
	}
	if q := done * 4 / total; q > p.marked {
		p.marked = q
		fmt.Fprintf(p.w, "%s: %d%% (%d of %d %s written)\n", p.label, q*25, done, total, p.unit)
	}
}

func (p *countProgress) bar() string {
	const width = 30
	filled := min(p.d*width/p.t, width)
	return fmt.Sprintf("%s [%s%s] %3d%% %d/%d %s", p.label, strings.Repeat("#", filled), strings.Repeat(" ", width-filled),
		p.d*100/p.t, p.d, p.t, p.unit)
}

// done ends the bar's line.
func (p *countProgress) done() {
	if p.tty && p.shown {
		fmt.Fprintf(p.w, "\r%s\n", p.bar())
		p.shown = false
	}
}
