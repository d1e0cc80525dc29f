package main

import (
	"context"
	"errors"
	"flag"
	"net/url"
)

const rolesIntro = `Manages roles: per application (--type client, --app CLIENT_ID) or per API
(--type resource_server, --app AUDIENCE), with permissions and directly
assigned users, through the admin API (/api/roles).
`

// entityFlags are the flags of role and permission create/update.
type entityFlags struct {
	name, desc, appType, app, id *string
}

func addEntityFlags(fs *flag.FlagSet, withID bool) entityFlags {
	f := entityFlags{
		name:    fs.String("name", "", "name (required)"),
		desc:    fs.String("description", "", "description"),
		appType: fs.String("type", "client", "application type: client or resource_server (an API)"),
		app:     fs.String("app", "", "client_id, or API audience for resource_server (required)"),
	}
	if withID {
		f.id = fs.String("id", "", "the _id (default: a new UUID)")
	}
	return f
}

func (f entityFlags) body() (map[string]any, error) {
	if *f.name == "" || *f.app == "" {
		return nil, errors.New("--name and --app are required")
	}
	b := map[string]any{"name": *f.name, "description": *f.desc, "applicationType": *f.appType, "applicationId": *f.app}
	if f.id != nil && *f.id != "" {
		b["_id"] = *f.id
	}
	return b, nil
}

// appListFlags adds --app and --type filters to a list.
func appListFlags(fs *flag.FlagSet, base string) func([]string) (string, string, any, error) {
	q := listFlags(fs)
	app := fs.String("app", "", "only this application (client_id or audience)")
	typ := fs.String("type", "", "only this application type")
	return func([]string) (string, string, any, error) {
		p := base + q()
		v := url.Values{}
		if *app != "" {
			v.Set("applicationId", *app)
		}
		if *typ != "" {
			v.Set("applicationType", *typ)
		}
		if len(v) > 0 {
			sep := "?"
			if len(p) > len(base) {
				sep = "&"
			}
			p += sep + v.Encode()
		}
		return "GET", p, nil, nil
	}
}

func runRoles(ctx context.Context, a *app, args []string) error {
	return runAdminGroup(ctx, a, "roles", rolesIntro, []adminSub{
		{name: "list", summary: "list roles (--app, --type, --q, --name, paging)", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			return appListFlags(fs, "/api/roles")
		}},
		{name: "get", args: "ROLE_ID", min: 1, summary: "show a role",
			setup: adminRequest("GET", func(a []string) string { return "/api/roles/" + esc(a[0]) }, nil)},
		{name: "create", summary: "create a role (--name, --app, --type, --permissions)", write: true, setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			ef := addEntityFlags(fs, true)
			perms := fs.String("permissions", "", "comma-separated permission _ids")
			return func([]string) (string, string, any, error) {
				b, err := ef.body()
				if err != nil {
					return "", "", nil, err
				}
				b["permissions"] = nonNilList(splitList(*perms))
				return "POST", "/api/roles", b, nil
			}
		}},
		{name: "update", args: "ROLE_ID", min: 1, summary: "set a role's name, description, application (and permissions with --permissions)", write: true, setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			ef := addEntityFlags(fs, false)
			perms := fs.String("permissions", "", "comma-separated permission _ids replacing the list (omit to keep it)")
			return func(a []string) (string, string, any, error) {
				b, err := ef.body()
				if err != nil {
					return "", "", nil, err
				}
				fs.Visit(func(f *flag.Flag) {
					if f.Name == "permissions" {
						b["permissions"] = nonNilList(splitList(*perms))
					}
				})
				return "PUT", "/api/roles/" + esc(a[0]), b, nil
			}
		}},
		{name: "delete", args: "ROLE_ID", min: 1, summary: "delete a role (--cascade to take it from groups)", write: true, setup: deleteWithCascade("/api/roles/")},
		{name: "users", args: "ROLE_ID", min: 1, summary: "list users the role is assigned to directly", setup: listOf("/api/roles/", "/users")},
		{name: "add-users", args: "ROLE_ID USER_ID...", min: 2, more: true, write: true, summary: "assign the role to users directly",
			setup: adminRequest("PATCH", func(a []string) string { return "/api/roles/" + esc(a[0]) + "/users" }, idsBody)},
		{name: "remove-users", args: "ROLE_ID USER_ID...", min: 2, more: true, write: true, summary: "remove direct assignments",
			setup: adminRequest("DELETE", func(a []string) string { return "/api/roles/" + esc(a[0]) + "/users" }, idsBody)},
		{name: "permissions", args: "ROLE_ID", min: 1, summary: "list the role's permissions", setup: listOf("/api/roles/", "/permissions")},
		{name: "add-permissions", args: "ROLE_ID PERMISSION_ID...", min: 2, more: true, write: true, summary: "grant permissions",
			setup: adminRequest("PATCH", func(a []string) string { return "/api/roles/" + esc(a[0]) + "/permissions" }, idsBody)},
		{name: "remove-permissions", args: "ROLE_ID PERMISSION_ID...", min: 2, more: true, write: true, summary: "revoke permissions",
			setup: adminRequest("DELETE", func(a []string) string { return "/api/roles/" + esc(a[0]) + "/permissions" }, idsBody)},
	}, args)
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// deleteWithCascade is DELETE prefix+ID with an optional --cascade.
func deleteWithCascade(prefix string) func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
	return func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
		cascade := fs.Bool("cascade", false, "also remove the references to it instead of refusing")
		return func(a []string) (string, string, any, error) {
			p := prefix + esc(a[0])
			if *cascade {
				p += "?cascade=true"
			}
			return "DELETE", p, nil, nil
		}
	}
}
