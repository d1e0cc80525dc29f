package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

const checkHelp = `Usage: claimsmith [--config FILE] [--data-dir DIR] check [flags]

Validates a configuration file without serving: decodes it strictly (an
unknown key anywhere is an error), builds the login pipeline with every
rule's settings, provisions the rules (the authorization rule reads the
extension configuration when from_extension is set) and compiles every
WebAssembly module, then prints the pipeline. The first error is printed as
one line naming the file, line, rule entry and key, with exit status 1.

The authorization store is the file store in --data-dir when it exists, else
an empty in-memory store (enough to check the configuration); with
store.backend redis it is the Redis store, which must be reachable.

Flags:
`

func runCheck(ctx context.Context, a *app, args []string) error {
	fset := flag.NewFlagSet("check", flag.ContinueOnError)
	fset.SetOutput(a.stderr)
	configPath := fset.String("config", a.configPath, "configuration file (YAML) to check")
	fset.StringVar(&a.dataDir, "data-dir", a.dataDir, "data directory of the file store")
	fset.Usage = func() { fmt.Fprint(fset.Output(), checkHelp); fset.PrintDefaults() }
	if err := fset.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fset.NArg() > 0 {
		fset.Usage()
		return &exitError{code: 2, err: errors.New("check takes no arguments")}
	}
	if *configPath == "" {
		fset.Usage()
		return &exitError{code: 2, err: errors.New("check needs --config FILE")}
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var st pipelineStore
	b := backendsOf(lc)
	if _, err := os.Stat(a.dataDir); !b.redisBackend() && errors.Is(err, fs.ErrNotExist) {
		st = memory.New(memory.Options{})
	} else {
		fst, err := openAuthzStore(ctx, a, b, true)
		if err != nil {
			return err
		}
		defer fst.Close()
		st = fst
	}
	p, release, err := newPipeline(ctx, a, lc, st, pipelineOptions{dryRun: true})
	if err != nil {
		return err
	}
	defer release()
	steps := p.Steps()
	fmt.Fprintf(a.stdout, "%s: ok — pipeline of %d rule(s), namespace %q\n", lc.path, len(steps), p.Namespace())
	for i, s := range steps {
		fmt.Fprintf(a.stdout, "  %d. %s [%s] timeout %s, on_error %s\n", i+1, s.Name, s.Kind, s.Timeout, s.OnError)
	}
	return nil
}
