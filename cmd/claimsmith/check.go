package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/claimsmith/claimsmith/runtime/setup"
)

const checkHelp = `Usage: claimsmith [--config FILE] [--data-dir DIR] check [flags]

Validates a configuration file exactly as 'claimsmith serve' would build it,
without serving: decodes it strictly (an unknown key anywhere, or a second
YAML document, is an error), validates every section (server and its TLS
pair, tokens: issuer URL, algorithm, lifetimes, introspection clients;
store, redis, cache), reads the secrets the *_env keys name from the
environment and builds the hooks with them (a missing variable or a
malformed whsec_ secret is an error), builds the login pipeline with every
rule's settings, provisions the rules (the authorization rule reads the
extension configuration when from_extension is set) and compiles every
WebAssembly module. Nothing is written, no key is generated, nothing
listens.

It prints the pipeline and the environment variables the configuration
reads (set, or MISSING), also when it fails. The first error is printed as
one line naming the file, line and key (and the rule entry), with exit
status 1.

The authorization store is the file store in --data-dir when it exists, else
an empty in-memory store (enough to check the configuration); with
store.backend redis it is the Redis store, which must be reachable.

Flags:
`

func runCheck(ctx context.Context, a *app, args []string) error {
	fset := flag.NewFlagSet("check", flag.ContinueOnError)
	fset.SetOutput(a.stderr)
	fset.StringVar(&a.configPath, "config", a.configPath, "configuration file (YAML) to check")
	fset.StringVar(&a.dataDir, "data-dir", a.dataDir, "data directory of the file store")
	fset.Usage = func() { fmt.Fprint(fset.Output(), checkHelp); fset.PrintDefaults() }
	if err := fset.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fset.NArg() > 0 {
		fset.Usage()
		return &exitError{code: 2, err: errors.New("check takes no arguments")}
	}
	if a.configPath == "" {
		fset.Usage()
		return &exitError{code: 2, err: errors.New("check needs --config FILE")}
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	rep, err := setup.Check(ctx, cfg, setup.Options{Env: a.env()})
	if err == nil {
		fmt.Fprintf(a.stdout, "%s: ok — pipeline of %d rule(s), namespace %q\n", cfg.Path(), len(rep.Steps), rep.Namespace)
		for i, s := range rep.Steps {
			fmt.Fprintf(a.stdout, "  %d. %s [%s] timeout %s, on_error %s\n", i+1, s.Name, s.Kind, s.Timeout, s.OnError)
		}
	}
	if rep != nil {
		printEnv(a.stdout, rep.Env)
	}
	return err
}

// printEnv lists the environment variables a configuration reads.
func printEnv(w io.Writer, vars []setup.EnvVar) {
	if len(vars) == 0 {
		return
	}
	fmt.Fprintln(w, "environment:")
	for _, v := range vars {
		state := "set"
		switch {
		case !v.Set && v.Required:
			state = "MISSING (required)"
		case !v.Set:
			state = "not set (optional)"
		}
		fmt.Fprintf(w, "  %s (%s, line %d): %s\n", v.Name, v.Key, v.Line, state)
	}
}
