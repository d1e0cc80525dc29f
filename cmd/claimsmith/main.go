// Command claimsmith is the login-time token enricher: one binary with
// subcommands for the server, the dry run, data import/export, keys and tokens.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/claimsmith/claimsmith/runtime/setup"
)

// exitError carries a specific exit status (e.g. 3 for "denied" in
// `claimsmith test`) through the command's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// app is what every subcommand receives: its streams, logger and the global
// flags. No package-level mutable state: tests run commands in-process.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	// dataDir is the --data-dir global flag (default ./data, or $CLAIMSMITH_DATA_DIR).
	dataDir string
	// configPath is the --config global flag ($CLAIMSMITH_CONFIG); empty means
	// embedded defaults.
	configPath string
	// cfg is --config as loaded (once) and bk the backends it names,
	// opened by the command (stores.go); run closes them.
	cfg *setup.Config
	bk  *setup.Backends
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

// commands lists the subcommands. Each lives in its own file in this folder.
func commands() []command {
	return []command{
		{"import", "replace the authorization data with an extension export (FILE or -)", runImport},
		{"export", "write the authorization data in the extension's format (--full: with applications, profiles)", runExport},
		{"policy", "print the groups, roles and permissions a user gets at login", runPolicy},
		{"users", "show a user's stored profile, or why they get their groups, roles and permissions (users get|explain USER_ID)", runUsers},
		{"serve", "run the HTTP server (introspection, revocation, JWKS, discovery, hooks)", runServe},
		{"keys", "list or rotate the token signing keys (keys list|rotate)", runKeys},
		{"token", "mint, verify or introspect tokens; hash introspection client secrets", runToken},
		{"test", "dry run: one login event through the pipeline (decision, claims, patches, trace)", runTest},
		{"check", "validate a configuration file and build its pipeline (compiles wasm rules)", runCheck},
		{"js", "migration helper: which Auth0 APIs JavaScript rules use, and whether they run here (js check FILE...)", runJS},
		{"admin-key", "create, list or revoke admin API keys (admin-key create --name N --scopes read,write)", runAdminKey},
		{"groups", "manage groups, members, nesting, group roles and mappings (locally or --server URL --key K)", runGroups},
		{"roles", "manage roles, their permissions and directly assigned users (locally or --server)", runRoles},
		{"permissions", "manage permissions (locally or --server)", runPermissions},
		{"apps", "manage applications: name and metadata such as required_roles (locally or --server)", runApps},
		{"clients", "register OAuth clients of the token endpoint in the store: create, list, rotate, delete (locally or --server)", runClients},
		{"loadtest", "drive a running server open-loop with a realistic mix; latency report and SVG plot", runLoadtest},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses the global flags, dispatches to a subcommand and turns its error
// into an exit status: 0 ok, 2 usage, 1 any other error (or the exitError's).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	defer a.close()
	fs := flag.NewFlagSet("claimsmith", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&a.dataDir, "data-dir", envOr("CLAIMSMITH_DATA_DIR", "data"), "data directory of the embedded file store")
	fs.StringVar(&a.configPath, "config", os.Getenv("CLAIMSMITH_CONFIG"), "configuration file (YAML); embedded defaults when empty")
	logLevel := fs.String("log-level", envOr("CLAIMSMITH_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	fs.Usage = func() { usage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "claimsmith: --log-level: %v\n", err)
		return 2
	}
	a.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" {
		usage(fs, stdout)
		if len(rest) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != rest[0] {
			continue
		}
		err := c.run(ctx, a, rest[1:])
		if err == nil {
			return 0
		}
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil && !errors.Is(ee.err, flag.ErrHelp) {
				fmt.Fprintf(stderr, "claimsmith %s: %v\n", c.name, ee.err)
			}
			return ee.code
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "claimsmith %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "claimsmith: unknown command %q (see claimsmith help)\n", rest[0])
	return 2
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "claimsmith — login-time token enricher\n\nUsage: claimsmith [global flags] <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nRun 'claimsmith <command> -h' for a command's flags.\n")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
