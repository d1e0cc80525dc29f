package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/token"
)

const keysHelp = `Usage: claimsmith [--data-dir DIR] [--config FILE] keys list|rotate [flags]

Manages the token signing keys in DIR/keys (with store.backend redis in
--config: in Redis, shared by every node; each node re-reads them every
tokens.key_reload).

  list     prints every key with its state:
             next     published in the JWKS, not signing yet
             active   signs new tokens
             retired  published, verifies tokens it signed until they expire
             dropped  past its retention; deleted by the server (or by rotate)
  rotate   generates a key and publishes it as next; it signs after
           tokens.propagation_delay (default 1h), when the current key retires.
           A retired key stays in the JWKS for the longest token lifetime plus
           the leeway, then is dropped. A running 'claimsmith serve' picks the
           new key up within tokens.key_reload (30s). Every rotation is
           recorded in the admin audit log (action keys.rotate, by
           cli:OS-USER, naming the new and the retiring kid).

Flags:
`

func runKeys(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	asJSON := fs.Bool("json", false, "list: print JSON")
	alg := fs.String("alg", "", "rotate: algorithm of the new key, RS256 | PS256 | ES256 | EdDSA (default tokens.algorithm)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), keysHelp); fs.PrintDefaults() }
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		return &exitError{code: 2, err: errors.New("want: keys list|rotate")}
	}
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("keys %s takes no arguments", sub)}
	}
	b, err := a.backends()
	if err != nil {
		return err
	}
	ks, err := b.KeySet(ctx)
	if err != nil {
		return err
	}
	if err := ks.Load(ctx); err != nil {
		return err
	}
	switch sub {
	case "rotate":
		var algo token.Algorithm
		if *alg != "" {
			if algo, err = token.ParseAlgorithm(*alg); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--alg: %w", err)}
			}
		}
		audit, err := openAuditLog(ctx, a)
		if err != nil {
			return err
		}
		// Through the admin service's rotation: it leaves a keys.rotate
		// record in the audit log the dashboard shows.
		rot, err := admin.RotateSigningKey(ctx, ks, audit, admin.Caller{KeyID: "local", KeyName: cliKeyName()}, algo, a.log, nil)
		if err != nil {
			return err
		}
		if rot.Record.Seq == 0 {
			fmt.Fprintf(a.stderr, "warning: the key was rotated but its audit record could not be written (see the log above)\n")
		}
		k := rot.Key
		if k.State == token.StateActive {
			// Nothing was published yet: the first key signs at once.
			fmt.Fprintf(a.stdout, "no keys yet: generated %s key %s, active now\n", k.Algorithm, k.ID)
			return nil
		}
		if _, err := ks.Prune(ctx); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "published %s key %s as next; it signs from %s (in %s)\n",
			k.Algorithm, k.ID, k.ActivateAt.Format(time.RFC3339), ks.Config().PropagationDelay)
		return nil
	default:
		infos := ks.Infos()
		if *asJSON {
			enc := json.NewEncoder(a.stdout)
			enc.SetIndent("", "  ")
			if infos == nil {
				infos = []token.KeyInfo{}
			}
			return enc.Encode(infos)
		}
		if len(infos) == 0 {
			fmt.Fprintln(a.stdout, "no keys yet (claimsmith serve generates one on first start)")
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KID\tALG\tSTATE\tACTIVATE AT\tRETIRE AT\tDROP AT")
		ts := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.Local().Format(time.RFC3339)
		}
		for _, in := range infos {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Algorithm, in.State, ts(in.ActivateAt), ts(in.RetireAt), ts(in.DropAt))
		}
		return tw.Flush()
	}
}
