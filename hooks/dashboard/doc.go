// Package dashboard is the admin dashboard served at /admin/: server-
// rendered html/template pages with a little progressive JavaScript, the
// assets embedded in the binary (no CDN, works offline). It reads and
// writes the authorization model only through the admin application
// service (runtime/admin.Service: every write is Service.Apply, checked
// against the revision the page showed, committed and audited), as the
// JSON API does; there is no second write path. A signing-key rotation
// goes through Service.RotateSigningKey, the path `claimsmith keys
// rotate` takes too, and is audited as keys.rotate.
//
// Sign-in exchanges an admin key for a session (session.go, signin.go):
// an HttpOnly, SameSite=Strict cookie (Secure under TLS) with idle and
// absolute expiry (the config's admin.dashboard.session_idle and
// session_max; runtime/setup fills Config) and a new id at every sign-in. Every POST carries the
// session's CSRF token; every route names the key scope it needs, so a
// read-only key sees no edit controls (templates ask .Call.CanWrite) and
// is refused by the server anyway (page.go). Every answer carries a CSP
// without inline scripts and refuses framing (security.go). Secrets are
// never rendered: the sign-in key is not kept, admin key hashes are not
// shown, signing keys are listed by kid.
//
// # Adding a page
//
//  1. Write pagename.go with a constructor on *Dashboard returning a Page:
//
//     func (d *Dashboard) widgetsPage() Page {
//     return Page{Name: "widgets", Title: "Widgets", Href: Prefix + "widgets",
//     Routes: []Route{
//     {Method: "GET", Path: Prefix + "widgets", Handle: d.widgetsList},
//     {Method: "POST", Path: Prefix + "widgets/{id}/delete", Scope: radmin.ScopeWrite, Handle: d.widgetDelete},
//     }}
//     }
//
//  2. Write templates/pagename.html defining "content" (inside the
//     layout; .Data is what the handler passed, .Call the request, .Form a
//     refused form) and any fragments it serves to search-as-you-type
//     (Fragment). Every form includes {{template "csrf" .Call}}; forms that
//     change the model also carry {{template "rev" .Data.Revision}} and
//     pass ParseRevision's IfMatch to apply, so a conflict shows
//     "changed by someone else — reload" (FormError).
//
//  3. Add the constructor to allPages in pages.go.
//
// Handlers read input only through the decoders of forms.go (fuzzed),
// render with Render / Fragment, refuse bad input with FormError (a
// visible message, nothing changed) and answer a successful write with
// redirectFlash. A page needing more than Config gives adds a typed
// field to Config (nil: the page says it is not available) and
// runtime/setup fills it. A script's POST (fetch) sends the token from
// <meta name="csrf-token"> as the X-CSRF-Token header.
package dashboard
