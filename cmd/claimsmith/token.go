package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/claimsmith/claimsmith/runtime/setup"
	"github.com/claimsmith/claimsmith/runtime/token"
)

const tokenHelp = `Usage: claimsmith [--data-dir DIR] [--config FILE] token <sub> [flags] [ARG]

  mint --user U --client C [--email E --email-verified] [--connection N]
       [--groups G1,G2] [--audience A] [--claim KEY=VALUE ...]
                      runs the login pipeline of the file serve runs for the
                      user and client and prints the ID token and access
                      token it mints. The event is the user's stored profile
                      (app_metadata, user_metadata, merged in as at a login)
                      plus these flags; --claim sets any other user field of
                      the native event (name=Alice, picture=…, or a dotted
                      path such as user_metadata.team=blue; VALUE is JSON
                      when it parses, else a string). Denied: prints the rule
                      and its reason, exit 3. Stored profiles are not changed.
                      Needs --config FILE (or $CLAIMSMITH_CONFIG) and the
                      environment variables its *_env keys name, as serve
                      does ('claimsmith check' lists them); after 'make run':
                        eval "$(make -s dev-env)"
  verify TOKEN|-      verifies a token against the key set (signature, kid,
                      alg, typ, iss, exp, nbf; --audience); prints its claims,
                      exits 1 saying why when it is not valid
  introspect TOKEN|-  prints the RFC 7662 answer /oauth2/introspect would give
                      (--live: with current authorization; --jwt: RFC 9701 form)
  hash-secret         reads an introspection client's secret from stdin (or
                      --generate makes one) and prints the secret_hash value
                      for tokens.introspection.clients

The tokens section of the configuration file (every key optional):
` + tokensSectionDoc + `
Flags:
`

const tokensSectionDoc = `  tokens:
    issuer: https://auth.example.com     # default http(s)://<server.addr>
    algorithm: RS256                     # of new keys: RS256 | PS256 | ES256 | EdDSA
    rsa_bits: 2048
    propagation_delay: 1h                # a rotated-in key is published this long before it signs
    key_reload: 30s                      # how often serve re-reads DIR/keys
    leeway: 10s                          # clock skew allowed on exp, nbf, iat
    lifetimes: {id_token: 1h, access_token: 1h}
    clients:                             # lifetimes per client_id
      my-spa: {access_token: 5m}
    introspection:
      namespace: https://example.com/    # of live claims (default: pipeline.namespace)
      ignore_required_roles: false       # live: stay active without a required role
      clients:                           # callers of /oauth2/introspect and /oauth2/revoke
        - client_id: orders-api
          secret_hash: sha256:…          # from 'claimsmith token hash-secret'
        - client_id: billing-api
          secret_env: BILLING_API_SECRET # or the secret itself from the environment
          live: true                     # always answer with current authorization
          audiences: [https://billing.example.com]  # only tokens for these APIs (default: any)
`

func runToken(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var (
		user     = fs.String("user", "", "mint: user id (required)")
		client   = fs.String("client", "", "mint: client id (required)")
		audience = fs.String("audience", "", "mint: API audience of the access token; verify: required aud")
		scope    = fs.String("scope", "openid profile", "mint: requested scopes, space-separated")
		conn     = fs.String("connection", "", "mint: connection name (group mappings apply only with it)")
		email    = fs.String("email", "", "mint: the user's email")
		verified = fs.Bool("email-verified", false, "mint: the user's email is verified (rules such as require-verified-email read it)")
		claims   = &claimFlags{}
		groups   = fs.String("groups", "", "mint: comma-separated groups the connection reported")
		nonce    = fs.String("nonce", "", "mint: nonce for the ID token")
		idToken  = fs.Bool("id-token", false, "verify: the token is an ID token (default: access token)")
		live     = fs.Bool("live", false, "introspect: add the user's current groups, roles and permissions")
		asJWT    = fs.Bool("jwt", false, "introspect: print the RFC 9701 signed answer")
		generate = fs.Bool("generate", false, "hash-secret: generate a random secret and print it with its hash")
		slow     = fs.Bool("pbkdf2", false, "hash-secret: PBKDF2-SHA256 instead of SHA-256 (for chosen, low-entropy secrets)")
	)
	fs.Var(claims, "claim", "mint: KEY=VALUE, a user field of the event (repeatable; VALUE is JSON when it parses)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), tokenHelp); fs.PrintDefaults() }
	subs := []string{"mint", "verify", "introspect", "hash-secret"}
	if len(args) == 0 || !contains(subs, args[0]) {
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		return &exitError{code: 2, err: errors.New("want: token mint|verify|introspect|hash-secret")}
	}
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return &exitError{code: 2, err: err}
	}

	if sub == "hash-secret" {
		return hashSecret(a, *generate, *slow)
	}
	b, err := a.backends()
	if err != nil {
		return err
	}
	switch sub {
	case "mint":
		if *user == "" || *client == "" || fs.NArg() > 0 {
			return &exitError{code: 2, err: errors.New("token mint needs --user and --client and no arguments")}
		}
		u, err := mintUser(*user, *email, *verified, splitList(*groups), claims.kv)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		return mintTokens(ctx, a, b, mintRequest{user: u, client: *client, audience: *audience,
			scopes: strings.Fields(*scope), connection: *conn, nonce: *nonce})
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: fmt.Errorf("token %s needs exactly one TOKEN (or - for stdin)", sub)}
	}
	tok := fs.Arg(0)
	if tok == "-" {
		b, err := io.ReadAll(io.LimitReader(a.stdin, token.MaxTokenBytes+1))
		if err != nil {
			return err
		}
		tok = strings.TrimSpace(string(b))
	}
	var ts *setup.TokenService
	if sub == "introspect" && *live {
		st, err := openDataStore(ctx, a, true)
		if err != nil {
			return err
		}
		defer st.Close()
		ts, err = b.TokenService(ctx, st, st)
		if err != nil {
			return err
		}
	} else if ts, err = b.TokenService(ctx, nil, nil); err != nil {
		return err
	}
	defer ts.Close()
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	switch sub {
	case "verify":
		kind := token.KindAccessToken
		if *idToken {
			kind = token.KindIDToken
		}
		v, err := ts.Verifier.Verify(ctx, tok, token.VerifyOptions{Kind: kind, Audience: *audience})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "valid %s: kid %s, alg %s\n", kind, v.KeyID, v.Algorithm)
		return enc.Encode(json.RawMessage(v.Payload))
	default: // introspect
		caller := token.Caller{ClientID: "claimsmith-cli"}
		ans, err := ts.Introspector.Introspect(ctx, caller, token.IntrospectRequest{Token: tok, Live: *live})
		if err != nil {
			return err
		}
		if *asJWT {
			jwt, err := ts.Introspector.Signed(ctx, caller, ans)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, jwt)
			return err
		}
		return enc.Encode(json.RawMessage(ans.JSON))
	}
}

func hashSecret(a *app, generate, slow bool) error {
	var secret string
	if generate {
		s, err := token.GenerateSecret()
		if err != nil {
			return err
		}
		secret = s
		fmt.Fprintf(a.stdout, "secret: %s\n", secret)
	} else {
		if f, ok := a.stdin.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				fmt.Fprint(a.stderr, "secret (then Enter, Ctrl-D): ")
			}
		}
		b, err := io.ReadAll(io.LimitReader(a.stdin, 4096))
		if err != nil {
			return err
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	h, err := token.HashSecret(secret, slow)
	if err != nil {
		return err
	}
	if generate {
		fmt.Fprintf(a.stdout, "secret_hash: %s\n", h)
		return nil
	}
	_, err = fmt.Fprintln(a.stdout, h)
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
