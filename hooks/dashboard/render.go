package dashboard

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// views are the parsed templates: for each page, layout.html and
// partials.html with the page's own file(s).
type views struct {
	byName map[string]*template.Template
}

// framework templates every set holds.
var baseTemplates = []string{"templates/layout.html", "templates/partials.html"}

// framework pages rendered with the layout.
var frameworkViews = []string{"signin", "error"}

func parseViews(fsys fs.FS, pages []Page) (*views, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(fsys, baseTemplates...)
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	v := &views{byName: map[string]*template.Template{}}
	add := func(name string, files []string) error {
		t, err := base.Clone()
		if err == nil {
			_, err = t.ParseFS(fsys, files...)
		}
		if err != nil {
			return fmt.Errorf("dashboard: template %s: %w", name, err)
		}
		v.byName[name] = t
		return nil
	}
	for _, n := range frameworkViews {
		if err := add(n, []string{"templates/" + n + ".html"}); err != nil {
			return nil, err
		}
	}
	for _, p := range pages {
		for _, n := range append([]string{p.Name}, p.Views...) {
			if err := add(n, []string{"templates/" + n + ".html"}); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// View is what every template gets.
type View struct {
	Title string
	// Call is the signed-in request (nil on the sign-in and signed-out
	// error pages).
	Call *Call
	Nav  []NavItem
	// Data is the page's own.
	Data any
	// Form holds a refused form's messages and values.
	Form *Form
}

// NavItem is one navigation link.
type NavItem struct {
	Title, Href string
	Current     bool
}

// Form is a submitted form's outcome as a template shows it: the values
// sent back (so nothing typed is lost) and the message of each field in
// error, or of the whole form.
type Form struct {
	// ID names the form on the page (a page may have several).
	ID     string
	Values url.Values
	Fields map[string]string
	// Message is the form-level error; Conflict marks a lost revision
	// check ("changed by someone else — reload").
	Message  string
	Conflict bool
}

// Value is what the user typed into field.
func (f *Form) Value(field string) string {
	if f == nil {
		return ""
	}
	return f.Values.Get(field)
}

// Err is field's message ("" when none).
func (f *Form) Err(field string) string {
	if f == nil {
		return ""
	}
	return f.Fields[field]
}

// Is reports whether this outcome is of form id.
func (f *Form) Is(id string) bool { return f != nil && f.ID == id }

// ConflictMessage is what a form shows when the data changed since the
// page was rendered.
const ConflictMessage = "Changed by someone else since this page was loaded — reload the page and try again. Nothing was changed."

// FormError turns a refused write into a form outcome: a validation
// error goes under its field when the form has one (fields maps the
// service's field names to the form's), anything else is the form's
// message.
func FormError(id string, r *http.Request, err error, fields map[string]string) *Form {
	f := &Form{ID: id, Values: r.PostForm, Fields: map[string]string{}}
	var ve *runtime.ValidationError
	var iu *authz.InUseError
	switch {
	case isConflict(err):
		f.Conflict, f.Message = true, ConflictMessage
	case errors.As(err, &ve):
		if name, ok := fields[ve.Field]; ok {
			f.Fields[name] = sentence(fieldLabel(name) + " " + ve.Reason)
			f.Message = "Please correct the field marked below. Nothing was changed."
		} else {
			f.Message = sentence(err.Error()) + " Nothing was changed."
		}
	case errors.As(err, &iu):
		f.Message = sentence(err.Error()) + " Nothing was changed."
	default:
		if errorStatus(err) >= 500 {
			f.Message = "The server could not do this (see its log). Nothing was changed."
		} else {
			f.Message = sentence(err.Error()) + " Nothing was changed."
		}
	}
	return f
}

// fieldLabel names a form field in its message ("Name is required.").
func fieldLabel(name string) string {
	switch name {
	case "applicationId":
		return "The application"
	case "applicationType":
		return "The kind of application"
	case "groupName":
		return "The IdP group name"
	case "connectionName":
		return "The connection name"
	case "client_id", "alg":
		return "The " + name
	case "members", "users", "nested", "roles", "permissions":
		return "The list"
	}
	return "The " + name
}

// sentence capitalises and ends a message.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// render writes page name's template "layout" (or fragment, when not "")
// with v. It renders into a buffer first, so a template error answers 500
// instead of half a page.
func (d *Dashboard) render(w http.ResponseWriter, status int, name, fragment string, v *View) {
	t := d.views.byName[name]
	if t == nil {
		d.log.Error("dashboard: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if v.Call != nil && fragment == "" {
		v.Nav = d.nav(v.Call)
	}
	exec := "layout"
	if fragment != "" {
		exec = fragment
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, exec, v); err != nil {
		d.log.Error("dashboard: template failed", "name", name, "fragment", fragment, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Render shows page's template; it is what page handlers call.
func (d *Dashboard) Render(w http.ResponseWriter, c *Call, status int, page, title string, data any, form *Form) {
	d.render(w, status, page, "", &View{Title: title, Call: c, Data: data, Form: form})
}

// Fragment renders one named template of page (a search's result rows).
func (d *Dashboard) Fragment(w http.ResponseWriter, c *Call, page, fragment string, data any) {
	d.render(w, http.StatusOK, page, fragment, &View{Call: c, Data: data})
}

// nav lists the pages the key may see.
func (d *Dashboard) nav(c *Call) []NavItem {
	var out []NavItem
	for _, p := range d.pages {
		if p.Title == "" {
			continue
		}
		scope := p.Scope
		if scope == "" {
			scope = "read:authz"
		}
		if !c.Key.Has(scope) {
			continue
		}
		out = append(out, NavItem{Title: p.Title, Href: p.Href, Current: c.Page == p.Name})
	}
	return out
}

// fail shows an error page with the error's status. Server errors do not
// show their text (it may name a backend's address).
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, c *Call, err error) {
	status := errorStatus(err)
	msg := sentence(err.Error())
	if status >= 500 {
		msg = "The server could not answer this request (see its log for request " + requestIDOf(c) + ")."
		d.log.ErrorContext(r.Context(), "dashboard error", "path", r.URL.Path, "err", err)
	}
	if r.Header.Get("X-Requested-With") == "fetch" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(msg))
		return
	}
	d.render(w, status, "error", "", &View{Title: http.StatusText(status), Call: c, Data: errorView{Status: status, Message: msg}})
}

type errorView struct {
	Status  int
	Message string
}

func requestIDOf(c *Call) string {
	if c == nil {
		return "-"
	}
	return c.RequestID
}

// redirectFlash answers a successful write: back to target (POST, then
// redirect, then GET) with a one-shot notice.
func (d *Dashboard) redirectFlash(w http.ResponseWriter, r *http.Request, target, msg string) {
	if s := d.sessionFor(r); s != nil {
		d.sessions.setFlash(s, msg)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// sessionFor is the request's session without the key check (the caller
// already passed it).
func (d *Dashboard) sessionFor(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	return d.sessions.live(c.Value)
}

var funcs = template.FuncMap{
	"add": func(a, b int) int { return a + b },
	"sub": func(a, b int) int { return a - b },
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"join": strings.Join,
	"u64":  func(n uint64) string { return strconv.FormatUint(n, 10) },
	"query": func(kv ...any) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if s := fmt.Sprint(kv[i+1]); s != "" && s != "0" || kv[i] == "page" && s != "0" {
				v.Set(fmt.Sprint(kv[i]), s)
			}
		}
		if len(v) == 0 {
			return ""
		}
		return template.URL("?" + v.Encode())
	},
	"pathesc": url.PathEscape,
	// userHref is the user view of a user id, for a login at client (or,
	// for a role of an API, audience) when the page knows one.
	"userHref": func(user, client, audience string) template.URL {
		v := url.Values{"user": {user}}
		if client != "" {
			v.Set("client", client)
		}
		if audience != "" {
			v.Set("audience", audience)
		}
		return template.URL(Prefix + "users?" + v.Encode())
	},
	// recentArgs carries a recent/total pair into the rules page.
	"recentArgs": func(none bool, recent, total uint64) recentArg {
		return recentArg{None: none, Recent: recent, Total: total}
	},
	// entityHref is the dashboard page of an audited entity ("" when it
	// has none).
	"entityHref": func(entity, id string) string {
		switch entity {
		case "group", "role", "permission":
			return Prefix + entity + "s/" + url.PathEscape(id)
		case "application":
			return Prefix + "applications/" + url.PathEscape(id)
		case "user":
			return Prefix + "users?" + url.Values{"user": {id}}.Encode()
		case radmin.EntitySigningKey:
			return Prefix + "keys"
		}
		return ""
	},
	// field carries a form field's arguments into the textfield partial.
	"field": func(f *Form, formID, name, label, value, help string) fieldArg {
		return fieldArg{Form: f, FormID: formID, Name: name, Label: label, Value: value, Help: help}
	},
	// treeArgs carries a nested-groups tree node into the recursive
	// template; only the top level (with the page's call) gets controls.
	"treeArgs": func(n treeNode, c *Call, g any) treeArg {
		a := treeArg{Node: n, Call: c, Top: c != nil}
		if gd, ok := g.(groupData); ok {
			a.Group = gd
		}
		return a
	},
}

type recentArg struct {
	None          bool
	Recent, Total uint64
}

type fieldArg struct {
	Form                             *Form
	FormID, Name, Label, Value, Help string
}

type treeArg struct {
	Node  treeNode
	Call  *Call
	Group groupData
	Top   bool
}
