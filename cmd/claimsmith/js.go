package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/claimsmith/claimsmith/runtime/js"
)

const jsHelp = `Usage: claimsmith js check [--json] FILE...

Migration helper for Auth0 Rules and Actions: lists, per file, whether it is
a Rule or an Action and each Auth0 API it uses, supported or not (with the
migration path). Exit status 1 when a file would not load as a ` + "`js:`" + ` rule.
It reads the code without running it; ` + "`claimsmith check`" + ` also compiles it.

Flags:
`

func runJS(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(a.stderr, jsHelp)
		return &exitError{code: 2, err: errors.New("js: want the subcommand check")}
	}
	fset := flag.NewFlagSet("js check", flag.ContinueOnError)
	fset.SetOutput(a.stderr)
	asJSON := fset.Bool("json", false, "print the reports as JSON")
	fset.Usage = func() { fmt.Fprint(fset.Output(), jsHelp); fset.PrintDefaults() }
	if err := fset.Parse(args[1:]); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fset.NArg() == 0 {
		fset.Usage()
		return &exitError{code: 2, err: errors.New("js check: no files given")}
	}
	reports := js.CheckFiles(fset.Args())
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return err
		}
	} else if err := js.WriteReports(a.stdout, reports); err != nil {
		return err
	}
	bad := 0
	for _, r := range reports {
		if !r.OK() {
			bad++
		}
	}
	if bad > 0 {
		return &exitError{code: 1, err: fmt.Errorf("js check: %d of %d file(s) need changes", bad, len(reports))}
	}
	return nil
}
