// Package setup is claimsmith's composition root, as a library: the whole
// configuration file's schema with one strict, line-aware loader, one
// Validate pass over every section, the store backends chosen from one table
// keyed by store.backend, the token service, the login pipeline over the
// built-in rules (rules.NewRegistry) and the HTTP server's assembly. The
// claimsmith command is flags, output and exit codes around it; `check` and
// `serve` build through the same functions, so check refuses exactly the
// files serve refuses, and tests start servers in-process through it.
//
// Loading and checking:
//
//	cfg, err := setup.Load("claimsmith.yaml")      // parsed once; one YAML document
//	err = cfg.Validate(ctx, setup.Env{Getenv: os.Getenv})
//	rep, err := setup.Check(ctx, cfg, setup.Options{Env: env}) // + store, pipeline, wasm
//
// Every configuration error is a *Error that prints as one line,
// `FILE:LINE: key "a.b.c": reason` (inside a pipeline rule entry the reason
// starts with `rule "NAME": `), and matches runtime.ErrInvalid.
//
// Serving (what `claimsmith serve` does, and what tests do on loopback):
//
//	srv, err := setup.Build(ctx, cfg, setup.Options{Env: setup.Env{DataDir: dir, Getenv: getenv, Log: log}})
//	defer srv.Close()
//	go srv.Serve(ctx, listener)   // or srv.Run(ctx) on server.addr; or srv.Handler()
//	srv.Reload(ctx)               // what SIGHUP and POST /api/reload do
//
// Commands that only need data open it through OpenBackends(cfg, env):
// Store / CommandStore, KeySet, TokenService, Admin, Revocations and the
// data dir's owner lock (LockForCommand).
//
// Dependency rule: setup imports hooks and runtime/*; nothing under runtime/
// and nothing in hooks imports setup (their tests may).
package setup
