package main

import (
	"context"
	"errors"
	"flag"
)

const groupsIntro = `Manages groups: members, nested (child) groups, roles and IdP group mappings,
through the admin API (the Auth0 Authorization Extension's /api/groups paths).
`

// idsBody is the body of the id-list endpoints: the arguments after the first.
func idsBody(args []string) any { return args[1:] }

func runGroups(ctx context.Context, a *app, args []string) error {
	return runAdminGroup(ctx, a, "groups", groupsIntro, []adminSub{
		{name: "list", summary: "list groups (--q, --name, --page, --per-page)", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			q := listFlags(fs)
			return func([]string) (string, string, any, error) { return "GET", "/api/groups" + q(), nil, nil }
		}},
		{name: "get", args: "GROUP_ID", min: 1, summary: "show a group",
			setup: adminRequest("GET", func(a []string) string { return "/api/groups/" + esc(a[0]) }, nil)},
		{name: "create", summary: "create a group (--name, --description, optional --id)", write: true, setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			name := fs.String("name", "", "group name, 1–50 characters, unique case-insensitively (required)")
			desc := fs.String("description", "", "description")
			id := fs.String("id", "", "the group's _id (default: a new UUID)")
			return func([]string) (string, string, any, error) {
				if *name == "" {
					return "", "", nil, errors.New("--name is required")
				}
				b := map[string]any{"name": *name, "description": *desc}
				if *id != "" {
					b["_id"] = *id
				}
				return "POST", "/api/groups", b, nil
			}
		}},
		{name: "update", args: "GROUP_ID", min: 1, summary: "set a group's name and description", write: true, setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			name := fs.String("name", "", "new name (required)")
			desc := fs.String("description", "", "new description (empty clears it)")
			return func(a []string) (string, string, any, error) {
				if *name == "" {
					return "", "", nil, errors.New("--name is required")
				}
				return "PUT", "/api/groups/" + esc(a[0]), map[string]any{"name": *name, "description": *desc}, nil
			}
		}},
		{name: "delete", args: "GROUP_ID", min: 1, summary: "delete a group (--cascade to un-nest it from its parents)", write: true, setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			cascade := fs.Bool("cascade", false, "remove the group from the groups it is nested in instead of refusing")
			return func(a []string) (string, string, any, error) {
				p := "/api/groups/" + esc(a[0])
				if *cascade {
					p += "?cascade=true"
				}
				return "DELETE", p, nil, nil
			}
		}},
		{name: "members", args: "GROUP_ID", min: 1, summary: "list direct members", setup: listOf("/api/groups/", "/members")},
		{name: "effective-members", args: "GROUP_ID", min: 1, summary: "list members of the group and of every group nested below it", setup: listOf("/api/groups/", "/members/nested")},
		{name: "add-members", args: "GROUP_ID USER_ID...", min: 2, more: true, write: true, summary: "add users to the group",
			setup: adminRequest("PATCH", func(a []string) string { return "/api/groups/" + esc(a[0]) + "/members" }, idsBody)},
		{name: "remove-members", args: "GROUP_ID USER_ID...", min: 2, more: true, write: true, summary: "remove users from the group",
			setup: adminRequest("DELETE", func(a []string) string { return "/api/groups/" + esc(a[0]) + "/members" }, idsBody)},
		{name: "nested", args: "GROUP_ID", min: 1, summary: "list nested (child) groups", setup: listOf("/api/groups/", "/nested")},
		{name: "nest", args: "GROUP_ID CHILD_ID...", min: 2, more: true, write: true, summary: "nest groups in the group (its members include theirs)",
			setup: adminRequest("PATCH", func(a []string) string { return "/api/groups/" + esc(a[0]) + "/nested" }, idsBody)},
		{name: "unnest", args: "GROUP_ID CHILD_ID...", min: 2, more: true, write: true, summary: "remove nested groups",
			setup: adminRequest("DELETE", func(a []string) string { return "/api/groups/" + esc(a[0]) + "/nested" }, idsBody)},
		{name: "roles", args: "GROUP_ID", min: 1, summary: "list the group's roles", setup: listOf("/api/groups/", "/roles")},
		{name: "add-roles", args: "GROUP_ID ROLE_ID...", min: 2, more: true, write: true, summary: "give the group roles",
			setup: adminRequest("PATCH", func(a []string) string { return "/api/groups/" + esc(a[0]) + "/roles" }, idsBody)},
		{name: "remove-roles", args: "GROUP_ID ROLE_ID...", min: 2, more: true, write: true, summary: "take roles from the group",
			setup: adminRequest("DELETE", func(a []string) string { return "/api/groups/" + esc(a[0]) + "/roles" }, idsBody)},
		{name: "mappings", args: "GROUP_ID", min: 1, summary: "list IdP group mappings", setup: listOf("/api/groups/", "/mappings")},
		{name: "add-mapping", args: "GROUP_ID", min: 1, write: true, summary: "map an IdP group (--connection, --idp-group) into the group", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			conn := fs.String("connection", "", "IdP connection name (required)")
			g := fs.String("idp-group", "", "group name the connection reports (required)")
			return func(a []string) (string, string, any, error) {
				if *conn == "" || *g == "" {
					return "", "", nil, errors.New("--connection and --idp-group are required")
				}
				return "PATCH", "/api/groups/" + esc(a[0]) + "/mappings", []map[string]string{{"groupName": *g, "connectionName": *conn}}, nil
			}
		}},
		{name: "remove-mappings", args: "GROUP_ID MAPPING_ID...", min: 2, more: true, write: true, summary: "remove mappings by _id",
			setup: adminRequest("DELETE", func(a []string) string { return "/api/groups/" + esc(a[0]) + "/mappings" }, idsBody)},
		{name: "of-user", args: "USER_ID", min: 1, summary: "list a user's groups (--effective: with every group they are nested in)", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			eff := fs.Bool("effective", false, "include the groups the user's groups are nested in")
			q := listFlags(fs)
			return func(a []string) (string, string, any, error) {
				p := "/api/users/" + esc(a[0]) + "/groups"
				if *eff {
					p += "/calculate"
				}
				return "GET", p + q(), nil, nil
			}
		}},
		{name: "remove-user", args: "USER_ID [GROUP...]", min: 1, more: true, write: true, summary: "remove a user from the listed groups (ids or names), or --all", setup: func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
			all := fs.Bool("all", false, "remove the user from every group")
			return func(a []string) (string, string, any, error) {
				p := "/api/users/" + esc(a[0]) + "/groups"
				switch {
				case *all && len(a) > 1:
					return "", "", nil, errors.New("give groups or --all, not both")
				case *all:
					return "DELETE", p + "?all=true", nil, nil
				case len(a) == 1:
					return "", "", nil, errors.New("give the groups to remove the user from, or --all")
				}
				return "DELETE", p, a[1:], nil
			}
		}},
	}, args)
}

// listOf is a paged GET of prefix + first argument + suffix.
func listOf(prefix, suffix string) func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
	return func(fs *flag.FlagSet) func([]string) (string, string, any, error) {
		q := listFlags(fs)
		return func(a []string) (string, string, any, error) {
			return "GET", prefix + esc(a[0]) + suffix + q(), nil, nil
		}
	}
}
