package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
)

const appsIntro = `Manages the applications (clients) claimsmith knows: name and string metadata
such as required_roles (comma-separated roles, any one of which a user needs
to log in), through the admin API (/api/applications).
`

// metaFlag collects repeated --meta KEY=VALUE flags.
type metaFlag map[string]string

func (m metaFlag) String() string { return fmt.Sprint(map[string]string(m)) }

func (m metaFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	m[k] = val
	return nil
}

func appBodyFlags(fs *flag.FlagSet) func(clientID string) map[string]any {
	name := fs.String("name", "", "display name")
	meta := metaFlag{}
	fs.Var(meta, "meta", "metadata KEY=VALUE (repeatable), e.g. --meta required_roles=admin,editor")
	return func(clientID string) map[string]any {
		b := map[string]any{"client_id": clientID, "name": *name}
		if len(meta) > 0 {
			b["metadata"] = map[string]string(meta)
		}
		return b
	}
}

func runApps(ctx context.Context, a *app, args []string) error {
	return runAdminGroup(ctx, a, "apps", appsIntro, []adminSub{
		{name: "list", summary: "list applications (--q, --name match name or client_id; paging)", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			q := listFlags(fs)
			return func([]string) (string, string, any, error) { return "GET", "/api/applications" + q(), nil, nil }
		}},
		{name: "get", args: "CLIENT_ID", min: 1, summary: "show an application",
			setup: adminRequest("GET", func(a []string) string { return "/api/applications/" + esc(a[0]) }, nil)},
		{name: "create", args: "CLIENT_ID", min: 1, write: true, summary: "register an application (--name, --meta KEY=VALUE...); refused if it exists", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			body := appBodyFlags(fs)
			return func(a []string) (string, string, any, error) { return "POST", "/api/applications", body(a[0]), nil }
		}},
		{name: "set", args: "CLIENT_ID", min: 1, write: true, summary: "create or replace an application (name and the whole metadata)", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			body := appBodyFlags(fs)
			return func(a []string) (string, string, any, error) {
				return "PUT", "/api/applications/" + esc(a[0]), body(a[0]), nil
			}
		}},
		{name: "delete", args: "CLIENT_ID", min: 1, write: true, summary: "remove an application",
			setup: adminRequest("DELETE", func(a []string) string { return "/api/applications/" + esc(a[0]) }, nil)},
	}, args)
}
