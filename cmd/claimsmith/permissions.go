package main

import (
	"context"
	"flag"
)

const permissionsIntro = `Manages permissions, per application (--type client, --app CLIENT_ID) or per
API (--type resource_server, --app AUDIENCE), through the admin API
(/api/permissions).
`

func runPermissions(ctx context.Context, a *app, args []string) error {
	return runAdminGroup(ctx, a, "permissions", permissionsIntro, []adminSub{
		{name: "list", summary: "list permissions (--app, --type, --q, --name, paging)", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			return appListFlags(fs, "/api/permissions")
		}},
		{name: "get", args: "PERMISSION_ID", min: 1, summary: "show a permission",
			setup: adminRequest("GET", func(a []string) string { return "/api/permissions/" + esc(a[0]) }, nil)},
		{name: "create", summary: "create a permission (--name, --app, --type)", write: true, setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			ef := addEntityFlags(fs, true)
			return func([]string) (string, string, any, error) {
				b, err := ef.body()
				return "POST", "/api/permissions", b, err
			}
		}},
		{name: "update", args: "PERMISSION_ID", min: 1, summary: "set a permission's name, description and application", write: true, setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			ef := addEntityFlags(fs, false)
			return func(a []string) (string, string, any, error) {
				b, err := ef.body()
				return "PUT", "/api/permissions/" + esc(a[0]), b, err
			}
		}},
		{name: "delete", args: "PERMISSION_ID", min: 1, summary: "delete a permission (--cascade to take it from roles)", write: true, setup: deleteWithCascade("/api/permissions/")},
	}, args)
}
