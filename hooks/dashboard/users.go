package dashboard

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The user view: for a user id and a login's client (and API audience,
// connection and IdP groups), the direct and effective groups, roles and
// permissions, each with why — the chain from a direct membership through
// nested parents to the role and permission, a direct role assignment, or
// an IdP-group mapping — and the stored app_metadata/user_metadata. The
// data is radmin.Service.Explain's, whose effective lists are exactly what
// the login resolves. Reads only.

func (d *Dashboard) usersPage() Page {
	return Page{Name: "users", Title: "Users", Href: Prefix + "users", Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "users", Handle: d.userView},
	}}
}

// userQuery is the user view's form: what login to explain.
type userQuery struct {
	User, Client, Audience, Connection, Groups string
}

// why is one reason, rendered: its chain as steps and as one line.
type why struct {
	Steps []authz.Step
	Text  string
}

type grantRow struct {
	ID, Name, App string
	// Chain is the shortest reason; More the other reasons.
	Chain why
	More  []why
	Note  string
}

type usersData struct {
	Query   userQuery
	Apps    []radmin.AppChoice
	APIs    []radmin.AppChoice
	Shown   bool
	View    radmin.UserView
	Groups  []grantRow
	Roles   []grantRow
	Perms   []grantRow
	AppMeta string
	UsrMeta string
	// ChooseClient: a link named the user and no application; the form
	// asks for one.
	ChooseClient bool
}

// ParseUserQuery reads the user view's query: user and client are needed
// to explain anything (without them the form is shown alone); every value
// is bounded text.
func ParseUserQuery(r *http.Request) (userQuery, error) {
	v := r.URL.Query()
	var q userQuery
	for _, f := range []struct {
		dst  *string
		name string
		max  int
	}{{&q.User, "user", 1024}, {&q.Client, "client", 1024}, {&q.Audience, "audience", 1024}, {&q.Connection, "connection", 1024}, {&q.Groups, "groups", 8192}} {
		s, err := FormText(v, "user view", f.name, f.max, false)
		if err != nil {
			return q, err
		}
		*f.dst = s
	}
	if q.User != "" && q.Client == "" {
		return q, fieldError("user view", "client", "is required: choose the application the login is for")
	}
	return q, nil
}

func (d *Dashboard) userView(w http.ResponseWriter, r *http.Request, c *Call) error {
	apps, err := d.svc.AppChoices(r.Context())
	if err != nil {
		return err
	}
	data := usersData{}
	for _, a := range apps {
		if a.Type == authz.TypeResourceServer {
			data.APIs = append(data.APIs, a)
		} else {
			data.Apps = append(data.Apps, a)
		}
	}
	q, err := ParseUserQuery(r)
	var ve *runtime.ValidationError
	if errors.As(err, &ve) && ve.Field == "client" && !r.URL.Query().Has("client") {
		// A link from another page (a group's member, an audit record)
		// names the user only: with one application there is nothing to
		// choose; with several the form asks, without calling it an error.
		if len(data.Apps) == 1 {
			q.Client, err = data.Apps[0].ID, nil
		} else {
			data.Query, data.ChooseClient = q, true
			d.Render(w, c, http.StatusOK, "users", "Users", data, nil)
			return nil
		}
	}
	data.Query = q
	if err != nil {
		d.Render(w, c, errorStatus(err), "users", "Users", data, queryError("user", r, err, map[string]string{"client": "client", "user": "user"}))
		return nil
	}
	if q.User == "" {
		d.Render(w, c, http.StatusOK, "users", "Users", data, nil)
		return nil
	}
	pq := authz.PolicyQuery{UserID: q.User, ClientID: q.Client, Audience: q.Audience, Connection: q.Connection}
	for _, g := range strings.Split(q.Groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			pq.IdPGroups = append(pq.IdPGroups, g)
		}
	}
	v, err := d.svc.Explain(r.Context(), pq)
	if err != nil {
		return err
	}
	data.Shown, data.View = true, v
	fillUserRows(&data)
	d.Render(w, c, http.StatusOK, "users", "User "+q.User, data, nil)
	return nil
}

// queryError shows a refused query (a GET form) like a refused POST form.
func queryError(id string, r *http.Request, err error, fields map[string]string) *Form {
	f := FormError(id, r, err, fields)
	f.Values = r.URL.Query()
	return f
}

func fillUserRows(data *usersData) {
	e := &data.View.Explanation
	for i, g := range e.Groups {
		row := grantRow{ID: g.ID, Name: g.Name, Chain: whyOf(e.GroupChain(i))}
		// The other reasons: every further path into the group.
		for _, w := range g.Why[1:] {
			one := authz.Explanation{Groups: []authz.GroupGrant{{Ref: g.Ref, Why: []authz.GroupWhy{w}}}}
			row.More = append(row.More, whyOf(one.GroupChain(0)))
		}
		data.Groups = append(data.Groups, row)
	}
	for i, r := range e.Roles {
		row := grantRow{ID: r.ID, Name: r.Name, App: r.ApplicationID, Chain: whyOf(e.RoleChain(i))}
		var via []string
		for _, g := range r.Groups {
			via = append(via, g.Name)
		}
		if len(via) > 0 {
			row.Note = "through " + strings.Join(via, ", ")
			if r.Direct {
				row.Note += "; also assigned directly"
			}
		} else {
			row.Note = "assigned directly"
		}
		data.Roles = append(data.Roles, row)
	}
	for i, p := range e.Permissions {
		row := grantRow{ID: p.ID, Name: p.Name, App: p.ApplicationID, Chain: whyOf(e.PermissionChain(i))}
		var via []string
		for _, r := range p.Roles {
			via = append(via, r.Name)
		}
		row.Note = "granted by " + strings.Join(via, ", ")
		data.Perms = append(data.Perms, row)
	}
	if p := data.View.Profile; p != nil {
		data.AppMeta, data.UsrMeta = indentJSON(p.AppMetadata), indentJSON(p.UserMetadata)
	}
}

func whyOf(steps []authz.Step) why { return why{Steps: steps, Text: authz.ChainText(steps)} }

// indentJSON renders stored metadata for reading ({} when empty).
func indentJSON(v map[string]any) string {
	if len(v) == 0 {
		return "{}"
	}
	// The template escapes for HTML; JSON's own escaping would show
	// \u003c instead of <.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "(not JSON: " + err.Error() + ")"
	}
	return strings.TrimSpace(b.String())
}
