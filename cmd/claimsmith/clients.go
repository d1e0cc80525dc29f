package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/claimsmith/claimsmith/runtime/exchange"
)

const clientsIntro = `Registers OAuth clients of the token endpoint (POST /oauth2/token: token exchange
and client_credentials) in the store, through the admin API (/api/clients). The
exchange section must be enabled for the endpoint to serve them.

A client's secret is generated, printed once by create and rotate (client_secret),
and stored only as its SHA-256: list and get never show it, nor its hash. A
rotation retires the old secret as soon as the server learns the new store
revision (at once on the server that took the write). Clients of the exchange
section in the configuration take precedence: their ids cannot be registered here.
`

// grantType expands the CLI shorthand of the token exchange grant.
func grantType(g string) string {
	if g == "token-exchange" || g == "token_exchange" {
		return exchange.GrantTokenExchange
	}
	return g
}

func clientBodyFlags(fs *flag.FlagSet) func(clientID string) (map[string]any, error) {
	name := fs.String("name", "", "the application's name when it is new")
	method := fs.String("auth-method", "", "token_endpoint_auth_method: client_secret_basic (default), client_secret_post or private_key_jwt")
	grants := fs.String("grant-types", "", "comma-separated: token-exchange (default), client_credentials")
	auds := fs.String("audiences", "", "comma-separated audiences the client may ask for; the first is the default")
	scopes := fs.String("scopes", "", "comma-separated: the only scopes the client may request")
	issuers := fs.String("issuers", "", "comma-separated upstream issuers whose tokens it may exchange (default: every trusted one)")
	jwks := fs.String("jwks", "", "file with the client's public JWK set (private_key_jwt)")
	return func(clientID string) (map[string]any, error) {
		b := map[string]any{"client_id": clientID}
		if *name != "" {
			b["name"] = *name
		}
		if *method != "" {
			b["token_endpoint_auth_method"] = *method
		}
		if g := splitList(*grants); len(g) > 0 {
			for i := range g {
				g[i] = grantType(g[i])
			}
			b["grant_types"] = g
		}
		for key, v := range map[string]string{"audiences": *auds, "scopes": *scopes, "issuers": *issuers} {
			if l := splitList(v); len(l) > 0 {
				b[key] = l
			}
		}
		if *jwks != "" {
			raw, err := os.ReadFile(*jwks)
			if err != nil {
				return nil, fmt.Errorf("--jwks: %w", err)
			}
			if !json.Valid(raw) {
				return nil, fmt.Errorf("--jwks %s is not JSON", *jwks)
			}
			b["jwks"] = json.RawMessage(raw)
		}
		return b, nil
	}
}

func runClients(ctx context.Context, a *app, args []string) error {
	return runAdminGroup(ctx, a, "clients", clientsIntro, []adminSub{
		{name: "list", summary: "list registered clients, without secrets (--q, --name match name or client_id; paging)", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			q := listFlags(fs)
			return func([]string) (string, string, any, error) { return "GET", "/api/clients" + q(), nil, nil }
		}},
		{name: "get", args: "CLIENT_ID", min: 1, summary: "show a registered client (never its secret)",
			setup: adminRequest("GET", func(a []string) string { return "/api/clients/" + esc(a[0]) }, nil)},
		{name: "create", args: "CLIENT_ID", min: 1, write: true, summary: "register a client; prints its client_secret ONCE (--auth-method, --grant-types, --audiences, --scopes, --issuers, --jwks FILE)", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			body := clientBodyFlags(fs)
			return func(a []string) (string, string, any, error) {
				b, err := body(a[0])
				return "POST", "/api/clients", b, err
			}
		}},
		{name: "rotate", args: "CLIENT_ID", min: 1, write: true, summary: "replace the client's secret; prints the new client_secret ONCE, the old one stops working",
			setup: adminRequest("POST", func(a []string) string { return "/api/clients/" + esc(a[0]) + "/secret" }, nil)},
		{name: "delete", args: "CLIENT_ID", min: 1, write: true, summary: "remove the client's registration (the application stays if it has a name or metadata)",
			setup: adminRequest("DELETE", func(a []string) string { return "/api/clients/" + esc(a[0]) }, nil)},
	}, args)
}
