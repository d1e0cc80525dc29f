package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

const usersHelp = `Usage: claimsmith [--data-dir DIR] users get USER_ID
       claimsmith [--data-dir DIR] users explain USER_ID --client CLIENT_ID [flags]

get prints the profile claimsmith stores for the user: the app_metadata and
user_metadata objects that logins change by merge patches. A user never seen
has empty objects.

explain prints why the user gets what a login at the client gets: every
effective group, role and permission with its chain (direct membership →
nested parent groups → role → permission, a directly assigned role, or an
IdP group mapped by the connection), the direct groups and roles, and the
stored profile. The effective lists are exactly what 'claimsmith policy'
answers. --json prints the admin API's GET /api/users/{id}/explain answer.

explain flags:
`

func runUsers(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("users", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var q authz.PolicyQuery
	fs.StringVar(&q.ClientID, "client", "", "client id of the application logged in to (explain; required)")
	fs.StringVar(&q.Audience, "audience", "", "API audience: roles bound to it (resource_server) apply too")
	fs.StringVar(&q.Connection, "connection", "", "connection name; group mappings apply only with it")
	groups := fs.String("groups", "", "comma-separated groups the connection reported for the user")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	fs.Usage = func() { fmt.Fprint(fs.Output(), usersHelp); fs.PrintDefaults() }
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(rest) == 2 && rest[0] == "explain" && rest[1] != "" {
		if q.ClientID == "" {
			fs.Usage()
			return &exitError{code: 2, err: errors.New("users explain needs --client")}
		}
		q.UserID = rest[1]
		for _, g := range strings.Split(*groups, ",") {
			if g = strings.TrimSpace(g); g != "" {
				q.IdPGroups = append(q.IdPGroups, g)
			}
		}
		return explainUser(ctx, a, q, *asJSON)
	}
	if len(rest) != 2 || rest[0] != "get" || rest[1] == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("usage: users get USER_ID | users explain USER_ID --client CLIENT_ID")}
	}
	st, err := openDataStore(ctx, a, true)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.Profile(ctx, rest[1])
	if err != nil {
		return err
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(p)
}

// explainUser prints the user view of q from the data store.
func explainUser(ctx context.Context, a *app, q authz.PolicyQuery, asJSON bool) error {
	st, err := openDataStore(ctx, a, true)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := st.Snapshot(ctx)
	if err != nil {
		return err
	}
	p, err := st.Profile(ctx, q.UserID)
	if err != nil {
		return err
	}
	v := admin.UserView{UserID: q.UserID, ClientID: q.ClientID, Audience: q.Audience, Connection: q.Connection,
		IdPGroups: q.IdPGroups, Explanation: m.Explain(q), Profile: &p}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	w := a.stdout
	at := q.ClientID
	if q.Audience != "" {
		at += " for " + q.Audience
	}
	fmt.Fprintf(w, "user %s at %s (revision %d)\n", q.UserID, at, v.Revision)
	fmt.Fprintf(w, "direct groups: %s\n", refNames(v.DirectGroups))
	var direct []string
	for _, r := range v.DirectRoles {
		s := r.Name + " (" + r.ApplicationID
		if !r.Applies {
			s += ", not this login"
		}
		direct = append(direct, s+")")
	}
	fmt.Fprintf(w, "direct roles: %s\n", orNone(strings.Join(direct, ", ")))
	fmt.Fprintln(w, "effective groups:")
	for i, g := range v.Groups {
		fmt.Fprintf(w, "  %s: %s\n", g.Name, authz.ChainText(v.GroupChain(i)))
	}
	fmt.Fprintln(w, "effective roles:")
	for i, r := range v.Roles {
		fmt.Fprintf(w, "  %s: %s\n", r.Name, authz.ChainText(v.RoleChain(i)))
	}
	fmt.Fprintln(w, "effective permissions:")
	for i, x := range v.Permissions {
		fmt.Fprintf(w, "  %s: %s\n", x.Name, authz.ChainText(v.PermissionChain(i)))
	}
	fmt.Fprintf(w, "app_metadata: %s\n", compact(p.AppMetadata))
	fmt.Fprintf(w, "user_metadata: %s\n", compact(p.UserMetadata))
	return nil
}

func refNames(refs []authz.Ref) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Name
	}
	return orNone(strings.Join(names, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
