package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// preCookie carries the sign-in form's own CSRF token: no session exists
// yet, so the form's token is checked against this cookie (a forged
// sign-in would otherwise sign a victim in as the forger's key).
const preCookie = "claimsmith_admin_signin"

type signInView struct {
	Next, Token string
	Error       string
	// Once is the one-time sign-in token being confirmed.
	Once bool
}

// safeNext keeps a post-sign-in target only when it is a dashboard path
// (no open redirect to another site).
func safeNext(next string) string {
	if strings.HasPrefix(next, Prefix) && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") &&
		!strings.HasPrefix(next, Prefix+"signin") {
		return next
	}
	return Prefix
}

func (d *Dashboard) signInPage(w http.ResponseWriter, r *http.Request) {
	d.showSignIn(w, r, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
}

func (d *Dashboard) showSignIn(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	tok := randomToken(24)
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: tok, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || d.cfg.SecureCookies, MaxAge: 3600})
	d.render(w, status, "signin", "", &View{Title: "Sign in", Data: signInView{Next: next, Token: tok, Error: msg}})
}

// signIn exchanges an admin key for a session. The key itself is never
// stored or shown again.
func (d *Dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		d.showSignIn(w, r, http.StatusBadRequest, Prefix, "The sign-in form could not be read.")
		return
	}
	next := safeNext(r.PostFormValue("next"))
	pre, err := r.Cookie(preCookie)
	if err != nil || pre.Value == "" || subtle.ConstantTimeCompare([]byte(pre.Value), []byte(r.PostFormValue("csrf"))) != 1 ||
		checkCSRF(r, pre.Value) != nil {
		d.showSignIn(w, r, http.StatusForbidden, next, "The sign-in form expired or was not sent by this page — try again.")
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("key"))
	if secret == "" {
		d.showSignIn(w, r, http.StatusBadRequest, next, "Enter an admin key (claimsmith admin-key create prints one).")
		return
	}
	key, err := d.cfg.Keys.Authenticate(r.Context(), secret)
	if errors.Is(err, runtime.ErrUnauthenticated) {
		d.log.InfoContext(r.Context(), "dashboard: sign-in refused", "reason", "unknown admin key")
		d.showSignIn(w, r, http.StatusUnauthorized, next, "That admin key is not valid.")
		return
	}
	if err != nil {
		d.fail(w, r, nil, err)
		return
	}
	if !key.Has(radmin.ScopeRead) {
		d.showSignIn(w, r, http.StatusForbidden, next, fmt.Sprintf("The admin key %q lacks the read:authz scope the dashboard needs.", key.Name))
		return
	}
	key.Hash = ""
	d.startSession(w, r, key, false, next)
}

// startSession replaces whatever session cookie the browser had with a
// new session's id (never one the browser chose).
func (d *Dashboard) startSession(w http.ResponseWriter, r *http.Request, key radmin.Key, fixed bool, next string) {
	if old, err := r.Cookie(CookieName); err == nil {
		d.sessions.end(old.Value)
	}
	id, _ := d.sessions.create(key, fixed)
	d.setCookie(w, r, id)
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	d.log.InfoContext(r.Context(), "dashboard: signed in", "key", key.Name, "key_id", key.ID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) signOut(w http.ResponseWriter, r *http.Request, c *Call) error {
	if ck, err := r.Cookie(CookieName); err == nil {
		d.sessions.end(ck.Value)
	}
	d.clearCookie(w, r)
	d.log.InfoContext(r.Context(), "dashboard: signed out", "key", c.Key.Name)
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
	return nil
}

// ---- one-time development sign-in ----

// oneTime is a single-use sign-in token for the development server: it
// works once, until its expiry, and only its digest is kept.
type oneTime struct {
	mu      sync.Mutex
	digest  [sha256.Size]byte
	expires time.Time
	used    bool
}

// DevKey is the identity a one-time sign-in's session writes as (audit
// records name it).
var devKey = radmin.Key{ID: "dev-signin", Name: "one-time dev sign-in"}

// EnableOneTimeSignIn makes a single-use sign-in token valid for ttl and
// returns the path that uses it (/admin/signin/once?token=…). Only the
// development server calls it, and prints the path to its own console:
// the token grants every admin scope to whoever opens it first.
func (d *Dashboard) EnableOneTimeSignIn(ttl time.Duration) string {
	tok := randomToken(32)
	d.devSignIn.Store(&oneTime{digest: sha256.Sum256([]byte(tok)), expires: d.now().Add(ttl)})
	return Prefix + "signin/once?token=" + tok
}

// take consumes the token when it matches and is still valid.
func (o *oneTime) take(tok string, now time.Time) bool {
	if o == nil || tok == "" {
		return false
	}
	d := sha256.Sum256([]byte(tok))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.used || !now.Before(o.expires) || subtle.ConstantTimeCompare(d[:], o.digest[:]) != 1 {
		return false
	}
	o.used = true
	return true
}

// oneTimePage asks for a click before using the token, so a link preview
// or prefetch (a GET) cannot spend it.
func (d *Dashboard) oneTimePage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	d.render(w, http.StatusOK, "signin", "", &View{Title: "One-time sign-in", Data: signInView{Next: Prefix, Token: tok, Once: true}})
}

func (d *Dashboard) oneTimeSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	// The token itself is the secret a forger lacks; still, only a form
	// from this origin may post it.
	if !sameOrigin(r) {
		d.fail(w, r, nil, ErrCSRF)
		return
	}
	if !d.devSignIn.Load().take(r.PostFormValue("token"), d.now()) {
		d.showSignIn(w, r, http.StatusUnauthorized, Prefix, "That one-time sign-in link was already used, has expired, or is wrong. Sign in with an admin key.")
		return
	}
	k := devKey
	k.Scopes = radmin.AllScopes()
	d.startSession(w, r, k, true, Prefix)
}
