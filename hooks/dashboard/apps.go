package dashboard

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The applications page: the clients claimsmith knows, their name and
// metadata (required_roles: the roles a login needs; any other key is
// the application's own), registered, edited and removed.

func (d *Dashboard) appsPage() Page {
	w := radmin.ScopeWrite
	return Page{Name: "applications", Title: "Applications", Href: Prefix + "applications", Views: []string{"application"}, Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "applications", Handle: d.appsList},
		{Method: http.MethodPost, Path: Prefix + "applications", Scope: w, Handle: d.appCreate},
		{Method: http.MethodGet, Path: Prefix + "applications/{client_id}", Handle: d.appShow},
		{Method: http.MethodPost, Path: Prefix + "applications/{client_id}/save", Scope: w, Handle: d.appSave},
		{Method: http.MethodPost, Path: Prefix + "applications/{client_id}/delete", Scope: w, Handle: d.appDelete},
	}}
}

type appRow struct {
	ClientID, Name string
	Metadata       []kv
	Roles, Perms   int
}

type kv struct{ Key, Value string }

type appsData struct {
	Revision uint64
	Q        string
	Rows     []appRow
	Pager    Pager
}

// sortedMeta lists metadata by key.
func sortedMeta(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// metaText is metadata as the form's textarea shows it.
func metaText(m map[string]string) string {
	var b strings.Builder
	for _, e := range sortedMeta(m) {
		b.WriteString(e.Key + "=" + e.Value + "\n")
	}
	return b.String()
}

// ParseMetadata reads "key=value" lines (blank lines skipped): a key is
// required, unique and without surrounding spaces; the value is kept as
// typed, trimmed.
func ParseMetadata(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok:
			return nil, fieldError("application", "metadata", fmt.Sprintf("line %d has no '=': write key=value", i+1))
		case k == "":
			return nil, fieldError("application", "metadata", fmt.Sprintf("line %d has an empty key", i+1))
		case len(k) > 256 || len(v) > 4096:
			return nil, fieldError("application", "metadata", fmt.Sprintf("line %d is too long (keys up to 256, values up to 4096 bytes)", i+1))
		}
		if _, dup := out[k]; dup {
			return nil, fieldError("application", "metadata", fmt.Sprintf("line %d repeats the key %q", i+1, clip(k)))
		}
		if len(out) >= 100 {
			return nil, fieldError("application", "metadata", "has more than 100 keys")
		}
		out[k] = strings.TrimSpace(v)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (d *Dashboard) appsData(r *http.Request) (appsData, error) {
	lq, err := ParseListQuery(r.URL.Query(), GroupsPerPage)
	if err != nil {
		return appsData{}, err
	}
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return appsData{}, err
	}
	doc := m.Document()
	roles, perms := map[string]int{}, map[string]int{}
	for _, ro := range doc.Roles {
		roles[ro.ApplicationID]++
	}
	for _, p := range doc.Permissions {
		perms[p.ApplicationID]++
	}
	var rows []appRow
	if doc.Claimsmith != nil {
		for _, a := range doc.Claimsmith.Applications {
			if lq.Match(a.Name, "") || lq.Match(a.ClientID, "") {
				rows = append(rows, appRow{ClientID: a.ClientID, Name: a.Name, Metadata: sortedMeta(a.Metadata), Roles: roles[a.ClientID], Perms: perms[a.ClientID]})
			}
		}
	}
	pg := radmin.Paginate(rows, lq, m.Revision())
	return appsData{Revision: m.Revision(), Q: r.URL.Query().Get("q"), Rows: pg.Items, Pager: NewPager(*r.URL, pg.Page, pg.PerPage, pg.Total)}, nil
}

func (d *Dashboard) appsList(w http.ResponseWriter, r *http.Request, c *Call) error {
	data, err := d.appsData(r)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("fragment") != "" {
		d.Fragment(w, c, "applications", "app-rows", data)
		return nil
	}
	d.Render(w, c, http.StatusOK, "applications", "Applications", data, nil)
	return nil
}

var appFields = map[string]string{"client_id": "client_id", "name": "name", "metadata": "metadata"}

// appForm reads a registration form.
func readApp(r *http.Request, clientID string) (authz.Application, error) {
	a := authz.Application{ClientID: clientID}
	var err error
	if a.ClientID == "" {
		if a.ClientID, err = FormText(r.PostForm, "application", "client_id", 4096, true); err != nil {
			return a, err
		}
	}
	if a.Name, err = FormText(r.PostForm, "application", "name", 4096, false); err != nil {
		return a, err
	}
	a.Metadata, err = ParseMetadata(r.PostForm.Get("metadata"))
	return a, err
}

func (d *Dashboard) appCreate(w http.ResponseWriter, r *http.Request, c *Call) error {
	refuse := func(err error) error {
		data, lerr := d.appsData(r)
		if lerr != nil {
			return lerr
		}
		d.Render(w, c, errorStatus(err), "applications", "Applications", data, FormError("create", r, err, appFields))
		return nil
	}
	if err := parseForm(r); err != nil {
		return refuse(err)
	}
	a, err := readApp(r, "")
	if err != nil {
		return refuse(err)
	}
	ch := entityChange("application.create", "application", a.ClientID)
	ch.Build = func(view *authz.Document, out *radmin.Change) error {
		if view.Claimsmith != nil {
			for _, x := range view.Claimsmith.Applications {
				if x.ClientID == a.ClientID {
					return fmt.Errorf("an application with client_id %q is registered already: %w", a.ClientID, runtime.ErrExists)
				}
			}
		}
		out.Ops = []authz.Op{&authz.PutApplication{Application: a}}
		return nil
	}
	if _, err := d.apply(r, c, ch, radmin.IfMatch{}); err != nil {
		return refuse(err)
	}
	d.redirectFlash(w, r, Prefix+"applications/"+pathEscape(a.ClientID), fmt.Sprintf("Application %q registered.", a.ClientID))
	return nil
}

type appData struct {
	Revision uint64
	App      authz.Application
	Meta     string
	Roles    []ref
}

func (d *Dashboard) appData(r *http.Request, id string) (appData, error) {
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return appData{}, err
	}
	a, ok := m.Application(id)
	if !ok {
		return appData{}, fmt.Errorf("application %q: %w", id, runtime.ErrNotFound)
	}
	data := appData{Revision: m.Revision(), App: a, Meta: metaText(a.Metadata)}
	for _, ro := range m.Document().Roles {
		if ro.ApplicationID == id {
			data.Roles = append(data.Roles, ref{ID: ro.ID, Name: ro.Name})
		}
	}
	return data, nil
}

func (d *Dashboard) appShow(w http.ResponseWriter, r *http.Request, c *Call) error {
	data, err := d.appData(r, r.PathValue("client_id"))
	if err != nil {
		return err
	}
	d.Render(w, c, http.StatusOK, "application", "Application "+data.App.ClientID, data, nil)
	return nil
}

// appWrite is entityWrite for an application's forms.
func (d *Dashboard) appWrite(w http.ResponseWriter, r *http.Request, c *Call, form string, build func(id string) (radmin.Change, string, error)) error {
	return d.entityWrite(w, r, c, entityPage{entity: "application", idField: "client_id", param: "client_id",
		refuse: func(id string, err error) error {
			data, derr := d.appData(r, id)
			if derr != nil {
				return derr
			}
			d.Render(w, c, errorStatus(err), "application", "Application "+id, data, FormError(form, r, err, appFields))
			return nil
		},
		target: func(id string, ch radmin.Change) string {
			if ch.Action == "application.delete" {
				return Prefix + "applications"
			}
			return Prefix + "applications/" + pathEscape(id)
		}}, build)
}

func (d *Dashboard) appSave(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.appWrite(w, r, c, "save", func(id string) (radmin.Change, string, error) {
		a, err := readApp(r, id)
		if err != nil {
			return radmin.Change{}, "", err
		}
		return entityChange("application.update", "application", id, &authz.PutApplication{Application: a}), "Application saved.", nil
	})
}

func (d *Dashboard) appDelete(w http.ResponseWriter, r *http.Request, c *Call) error {
	return d.appWrite(w, r, c, "delete", func(id string) (radmin.Change, string, error) {
		return entityChange("application.delete", "application", id, &authz.DeleteApplication{ClientID: id}), "Application removed.", nil
	})
}
