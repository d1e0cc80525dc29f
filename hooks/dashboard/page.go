package dashboard

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// Page is one dashboard page: its navigation entry, its template file and
// its routes. A page is added in one place, allPages (pages.go).
type Page struct {
	// Name is the page's id and its template file without ".html"
	// (templates/<Name>.html, which defines "title" and "content").
	Name string
	// Title is the navigation label; Href the navigation target. A page
	// with an empty Title is not in the navigation.
	Title, Href string
	// Scope is what a key needs to see the page in the navigation
	// (read:authz when empty).
	Scope string
	// Views are more templates the page renders, each its own file
	// templates/<view>.html defining "content" (e.g. one entity's page).
	Views  []string
	Routes []Route
}

// Route is one method and path of a page.
type Route struct {
	Method string // GET or POST
	// Path is a ServeMux path pattern under Prefix, e.g.
	// "/admin/groups/{id}".
	Path string
	// Scope is the admin key scope the route needs. GET routes take
	// read:authz (the default); a POST must name a write scope
	// (write:authz, import, …): it is refused without it whatever the
	// page shows, and always needs the session's CSRF token.
	Scope string
	// MaxBody bounds the request body (MaxBody when 0).
	MaxBody int64
	Handle  HandlerFunc
}

// HandlerFunc serves a signed-in request. An error it returns is shown
// as an error page with the status hooks.StatusOf gives it; a handler
// that shows a form's errors inline renders itself and returns nil.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, c *Call) error

// Call is one signed-in request.
type Call struct {
	// Key is the admin key the session signed in with (never its secret).
	Key radmin.Key
	// CSRF is the session's token; every form posts it back.
	CSRF string
	// RequestID ties audit records to the logs.
	RequestID string
	// Page is the page serving the request ("" for the framework's own).
	Page string
	// Flash is a one-shot notice from the previous request (a redirect
	// after a write), already consumed.
	Flash string
}

// Can reports whether the session's key carries scope: templates hide
// the controls of what it cannot do, and handle refuses it anyway.
func (c *Call) Can(scope string) bool { return c.Key.Has(scope) }

// CanWrite is Can(write:authz), the scope of every edit control.
func (c *Call) CanWrite() bool { return c.Key.Has(radmin.ScopeWrite) }

// Caller is the admin service's view of who is writing.
func (c *Call) Caller() radmin.Caller {
	// The request id ("dash-…") tells a dashboard write from an API one.
	return radmin.Caller{KeyID: c.Key.ID, KeyName: c.Key.Name, RequestID: c.RequestID}
}

// handle wraps a page route: session, scope, CSRF, then the handler.
func (d *Dashboard) handle(rt Route) http.Handler {
	scope := rt.Scope
	if scope == "" && rt.Method == http.MethodGet {
		scope = radmin.ScopeRead
	}
	limit := rt.MaxBody
	if limit == 0 {
		limit = MaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, key, err := d.sessionOf(r)
		if err != nil {
			d.fail(w, r, nil, err)
			return
		}
		if s == nil {
			d.toSignIn(w, r)
			return
		}
		c := &Call{Key: key, CSRF: s.csrf, RequestID: newRequestID(), Page: pageOf(r.URL.Path)}
		if rt.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			// The CSRF check comes before anything else reads the form,
			// so a forged request changes nothing and costs nothing.
			if err := checkCSRF(r, s.csrf); err != nil {
				d.log.InfoContext(r.Context(), "dashboard: refused a request without a valid CSRF token", "path", r.URL.Path, "key", key.Name)
				d.fail(w, r, c, err)
				return
			}
		}
		if scope != "" && !key.Has(scope) {
			d.fail(w, r, c, fmt.Errorf("the admin key %q lacks the %q scope this needs: %w", key.Name, scope, runtime.ErrForbidden))
			return
		}
		c.Flash = d.sessions.takeFlash(s)
		if err := rt.Handle(w, r, c); err != nil {
			lvl := slog.LevelInfo
			if errorStatus(err) >= 500 {
				lvl = slog.LevelError
			}
			d.log.Log(r.Context(), lvl, "dashboard request failed", "method", r.Method, "path", r.URL.Path, "key", key.Name,
				"request_id", c.RequestID, "err", err)
			d.fail(w, r, c, err)
		}
	})
}

// pageOf names the page of a path: /admin/groups/x → groups.
func pageOf(path string) string {
	rest := strings.TrimPrefix(path, Prefix)
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// ErrCSRF is a state-changing request without the session's CSRF token.
var ErrCSRF = fmt.Errorf("the form's security token is missing or wrong (reload the page and try again): %w", runtime.ErrForbidden)

// checkCSRF compares the request's token (form field csrf, or the
// X-CSRF-Token header of a script's fetch) with the session's, and
// refuses a request another site's page sent (Origin or Sec-Fetch-Site).
func checkCSRF(r *http.Request, want string) error {
	if !sameOrigin(r) {
		return ErrCSRF
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		// A multipart form (an upload) is parsed by the page itself with
		// its own limit; the token must then come as the header or first.
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			if err := r.ParseMultipartForm(32 << 10); err != nil {
				return ErrCSRF
			}
		}
		got = r.PostFormValue("csrf")
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return ErrCSRF
	}
	return nil
}

// toSignIn answers a request without a valid session: a page goes to the
// sign-in form (and back after it), a script's fetch gets 401.
func (d *Dashboard) toSignIn(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Requested-With") == "fetch" || r.Method != http.MethodGet {
		d.fail(w, r, nil, fmt.Errorf("not signed in, or the session expired: %w", runtime.ErrUnauthenticated))
		return
	}
	http.Redirect(w, r, Prefix+"signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// sameOrigin reports whether the browser says the request comes from a
// page of this origin (or says nothing: a non-browser client).
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "null" {
		// A privacy-minded browser hides the origin; only its own
		// Sec-Fetch-Site can vouch for the request then.
		return site == "same-origin"
	}
	if o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	return true
}
