package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// Sessions: signing in exchanges an admin key for a random session id held
// in an HttpOnly, SameSite=Strict cookie (Secure under TLS). The server
// keeps only the id's digest, the key's identity (never its secret) and the
// session's CSRF token. A session ends at sign-out, after IdleTimeout
// unused, after MaxAge in any case, or when its key is revoked. Sign-in
// always makes a new id, and an id the server did not make is never
// adopted, so a cookie planted before sign-in (session fixation) is
// worthless.

// CookieName is the session cookie's name.
const CookieName = "claimsmith_admin"

// MaxSessions bounds the sessions held at once; the oldest is dropped
// beyond it (sign-ins cost an admin key each, so this is never reached in
// use, and it keeps a flood of sign-ins from growing memory).
const MaxSessions = 10000

type session struct {
	key      radmin.Key
	csrf     string
	created  time.Time
	lastSeen time.Time
	// fixed marks a session not backed by the key store (the one-time
	// development sign-in): its key is not looked up again.
	fixed bool
	flash string
}

type sessions struct {
	mu        sync.Mutex
	byDigest  map[string]*session
	now       func() time.Time
	idle, max time.Duration
}

func newSessions(now func() time.Time, idle, max time.Duration) *sessions {
	return &sessions{byDigest: map[string]*session{}, now: now, idle: idle, max: max}
}

// randomToken returns n random bytes, base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func digest(id string) string {
	d := sha256.Sum256([]byte(id))
	return hex.EncodeToString(d[:])
}

// create starts a session for key and returns its new id.
func (s *sessions) create(key radmin.Key, fixed bool) (string, *session) {
	id := randomToken(32)
	now := s.now()
	se := &session{key: key, csrf: randomToken(32), created: now, lastSeen: now, fixed: fixed}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.byDigest) >= MaxSessions {
		var oldest string
		var at time.Time
		for k, v := range s.byDigest {
			if oldest == "" || v.created.Before(at) {
				oldest, at = k, v.created
			}
		}
		delete(s.byDigest, oldest)
	}
	s.byDigest[digest(id)] = se
	return id, se
}

// live returns the session of id, touching it; nil when unknown or
// expired (an expired one is forgotten).
func (s *sessions) live(id string) *session {
	if id == "" {
		return nil
	}
	k := digest(id)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.byDigest[k]
	if se == nil {
		return nil
	}
	if s.expired(se, now) {
		delete(s.byDigest, k)
		return nil
	}
	se.lastSeen = now
	return se
}

func (s *sessions) expired(se *session, now time.Time) bool {
	return now.Sub(se.lastSeen) >= s.idle || now.Sub(se.created) >= s.max
}

// sweepLocked forgets expired sessions.
func (s *sessions) sweepLocked(now time.Time) {
	for k, se := range s.byDigest {
		if s.expired(se, now) {
			delete(s.byDigest, k)
		}
	}
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byDigest, digest(id))
}

// update sets a session's key (scopes changed in the key store).
func (s *sessions) setKey(se *session, k radmin.Key) {
	s.mu.Lock()
	se.key = k
	s.mu.Unlock()
}

func (s *sessions) setFlash(se *session, msg string) {
	s.mu.Lock()
	se.flash = msg
	s.mu.Unlock()
}

func (s *sessions) takeFlash(se *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := se.flash
	se.flash = ""
	return f
}

// sessionOf returns the request's live session and its key as the key
// store holds it now; nil without one. A revoked key ends the session.
func (d *Dashboard) sessionOf(r *http.Request) (*session, radmin.Key, error) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil, radmin.Key{}, nil
	}
	se := d.sessions.live(c.Value)
	if se == nil {
		return nil, radmin.Key{}, nil
	}
	d.sessions.mu.Lock()
	key, fixed := se.key, se.fixed
	d.sessions.mu.Unlock()
	if fixed {
		return se, key, nil
	}
	cur, err := d.currentKey(r.Context(), key.ID)
	if errors.Is(err, runtime.ErrNotFound) {
		d.sessions.end(c.Value)
		return nil, radmin.Key{}, nil
	}
	if err != nil {
		return nil, radmin.Key{}, err
	}
	if !slices.Equal(cur.Scopes, key.Scopes) || cur.Name != key.Name {
		d.sessions.setKey(se, cur)
	}
	return se, cur, nil
}

// currentKey looks a key up by id in the key store.
func (d *Dashboard) currentKey(ctx context.Context, id string) (radmin.Key, error) {
	keys, err := d.cfg.Keys.List(ctx)
	if err != nil {
		return radmin.Key{}, err
	}
	for _, k := range keys {
		if k.ID == id {
			k.Hash = ""
			return k, nil
		}
	}
	return radmin.Key{}, runtime.ErrNotFound
}

// setCookie sets the session cookie: HttpOnly (no script reads it),
// SameSite=Strict (no other site's page sends it), Secure under TLS,
// scoped to the dashboard's path, expiring with the session's maximum age.
func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || d.cfg.SecureCookies, MaxAge: int(d.cfg.MaxAge / time.Second)})
}

func (d *Dashboard) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || d.cfg.SecureCookies, MaxAge: -1})
}

// newRequestID is the id of a dashboard request in logs and audit records.
func newRequestID() string { return "dash-" + randomToken(12) }
