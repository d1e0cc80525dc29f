package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

const testHelp = `Usage: claimsmith [--config FILE] [--data-dir DIR] test --event EVENT.json [flags]

The dry run: runs one login event (the native post-login event, JSON; see
samples/events) through the configured pipeline and prints the decision, the
claims of each token, the scopes and metadata patches, the resolved
authorization and a per-rule trace with durations and log lines.

Nothing is written: the stored profile is read and merged into the event as
at a real login, and the patches a login would persist are only shown.

Authorization data comes from --data FILE (an extension export or a
'claimsmith export --full' file, loaded into memory) or else from the file
store in --data-dir, which must exist.

Exit status: 0 allowed, 3 denied, 1 error (configuration, event, store); a
configuration error is one line naming the file, line, rule entry and key.

Flags:
`

func runTest(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&a.configPath, "config", a.configPath, "configuration file (YAML) with the pipeline section")
	eventPath := fs.String("event", "", "the login event, a JSON file, or - for stdin (required)")
	dataFile := fs.String("data", "", "authorization data file to load into memory instead of --data-dir")
	fs.StringVar(&a.dataDir, "data-dir", a.dataDir, "data directory of the file store")
	nowFlag := fs.String("now", "", "pin the clock (RFC 3339, e.g. 2026-11-23T10:00:00Z) for time-based rules")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of text")
	fs.Usage = func() { fmt.Fprint(fs.Output(), testHelp); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 || *eventPath == "" || a.configPath == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("test needs --config FILE and --event FILE and takes no arguments")}
	}
	now := time.Now
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--now: %q is not an RFC 3339 time", *nowFlag)}
		}
		now = func() time.Time { return t }
	}

	cfg, err := a.config()
	if err != nil {
		return err
	}
	ev, err := readEvent(a.stdin, *eventPath)
	if err != nil {
		return err
	}
	st, closeStore, err := openPipelineStore(ctx, a, *dataFile)
	if err != nil {
		return err
	}
	defer closeStore()
	p, err := cfg.BuildPipeline(ctx, a.env(), st, setup.PipelineOptions{Now: now, DryRun: true})
	if err != nil {
		return err
	}
	defer p.Close()

	res, err := p.Run(ctx, ev)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printResult(a.stdout, res)
	}
	if !res.Decision.Allowed {
		return &exitError{code: 3}
	}
	return nil
}

// readEvent reads and decodes the event file (or stdin for "-").
func readEvent(stdin io.Reader, path string) (*runtime.Event, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, runtime.MaxEventBytes+1))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	ev, err := runtime.DecodeEvent(b)
	if err != nil {
		if path == "-" {
			path = "stdin"
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ev, nil
}

// openPipelineStore loads dataFile into a memory store, or opens the file
// store in the data directory, which must exist.
func openPipelineStore(ctx context.Context, a *app, dataFile string) (setup.PipelineStore, func(), error) {
	if dataFile == "" {
		st, err := openDataStore(ctx, a, true)
		if err != nil {
			return nil, nil, err
		}
		return st, func() { _ = st.Close() }, nil
	}
	b, err := os.ReadFile(dataFile)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	doc, err := authz.ParseDocument(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dataFile, err)
	}
	st := memory.New(memory.Options{})
	if _, err := st.Apply(ctx, 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dataFile, err)
	}
	return st, func() { _ = st.Close() }, nil
}

// printResult writes the dry run's text report. Values are compact JSON so
// they can be pasted into a test or a token.
func printResult(w io.Writer, res *runtime.Result) {
	d := res.Decision
	if d.Allowed {
		fmt.Fprintln(w, "decision: allowed")
	} else {
		by := ""
		if d.Rule != "" {
			by = " by " + d.Rule
		}
		fmt.Fprintf(w, "decision: denied%s (%s): %s\n", by, d.Code, d.Reason)
	}
	printClaims(w, "id_token claims", res.IDTokenClaims)
	printClaims(w, "access_token claims", res.AccessTokenClaims)
	if len(res.ScopesAdded)+len(res.ScopesRemoved) > 0 {
		fmt.Fprintf(w, "scopes: added [%s] removed [%s]\n", strings.Join(res.ScopesAdded, " "), strings.Join(res.ScopesRemoved, " "))
	}
	fmt.Fprintf(w, "app_metadata patch: %s\n", compactOr(res.AppMetadata, "(none)"))
	fmt.Fprintf(w, "user_metadata patch: %s\n", compactOr(res.UserMetadata, "(none)"))
	if a := res.Authorization; a != nil {
		fmt.Fprintln(w, "authorization:")
		fmt.Fprintf(w, "  groups = %s\n", compact(a.Groups))
		fmt.Fprintf(w, "  roles = %s\n", compact(a.Roles))
		fmt.Fprintf(w, "  permissions = %s\n", compact(a.Permissions))
	}
	fmt.Fprintln(w, "trace:")
	for i, t := range res.Trace {
		status := t.Vote.String()
		if t.Skipped {
			status = "failed, skipped (on_error: skip)"
		} else if t.Error != "" {
			status = "failed, deny (on_error: deny)"
		}
		fmt.Fprintf(w, "  %d. %s [%s] %s %s\n", i+1, t.Rule, t.Kind, status, t.Duration.Round(time.Microsecond/10))
		for _, l := range t.Log {
			fmt.Fprintf(w, "       %s: %s\n", l.Level, l.Msg)
		}
		if t.Error != "" {
			fmt.Fprintf(w, "       error: %s\n", t.Error)
		}
	}
}

func printClaims(w io.Writer, title string, c runtime.Claims) {
	if len(c) == 0 {
		fmt.Fprintf(w, "%s: (none)\n", title)
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, cl := range c {
		fmt.Fprintf(w, "  %s = %s\n", cl.Name, compact(cl.Value))
	}
}

func compactOr(m map[string]any, none string) string {
	if len(m) == 0 {
		return none
	}
	return compact(m)
}

// compact is v as one line of JSON without HTML escaping.
func compact(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSpace(buf.String())
}
