package dashboard

import (
	"fmt"
	"net/http"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// The signing keys page: the token signing keys by kid with their state
// (next: published, not signing yet; active: signing; retired: still
// verifying), and rotation. Private keys are never shown.

func (d *Dashboard) signingPage() Page {
	return Page{Name: "keys", Title: "Signing keys", Href: Prefix + "keys", Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "keys", Handle: d.keysList},
		// Rotation changes what signs tokens: it takes the write scope.
		{Method: http.MethodPost, Path: Prefix + "keys/rotate", Scope: radmin.ScopeWrite, Handle: d.keysRotate},
	}}
}

type keysData struct {
	Available  bool
	Keys       []token.KeyInfo
	Algorithms []token.Algorithm
}

func (d *Dashboard) keysData() keysData {
	if d.cfg.Signing == nil {
		return keysData{}
	}
	var keys []token.KeyInfo
	for _, k := range d.cfg.Signing.Infos() {
		// A dropped key no longer verifies anything: it is only waiting
		// for the next prune.
		if k.State != token.StateDropped {
			keys = append(keys, k)
		}
	}
	return keysData{Available: true, Keys: keys, Algorithms: token.Algorithms()}
}

func (d *Dashboard) keysList(w http.ResponseWriter, r *http.Request, c *Call) error {
	d.Render(w, c, http.StatusOK, "keys", "Signing keys", d.keysData(), nil)
	return nil
}

func (d *Dashboard) keysRotate(w http.ResponseWriter, r *http.Request, c *Call) error {
	if d.cfg.Signing == nil {
		return fmt.Errorf("this server has no signing keys to rotate: %w", runtime.ErrNotFound)
	}
	err := parseForm(r)
	var alg token.Algorithm
	if err == nil {
		if s := r.PostForm.Get("alg"); s != "" {
			alg, err = token.ParseAlgorithm(s)
			if err != nil {
				err = fieldError("signing key", "alg", fmt.Sprintf("is %q, not one of RS256, PS256, ES256, EdDSA", clip(s)))
			}
		}
	}
	var rot radmin.Rotation
	if err == nil {
		// Through the admin service: the rotation is audited like any write.
		rot, err = d.svc.RotateSigningKey(r.Context(), c.Caller(), d.cfg.Signing, alg)
	}
	if err != nil {
		d.Render(w, c, errorStatus(err), "keys", "Signing keys", d.keysData(), FormError("rotate", r, err, map[string]string{"alg": "alg"}))
		return nil
	}
	msg := fmt.Sprintf("New key %s published; it signs from %s.", rot.Key.ID, rot.Key.ActivateAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	if rot.Record.Seq == 0 {
		msg += " The audit record could not be written (see the server log)."
	}
	d.redirectFlash(w, r, Prefix+"keys", msg)
	return nil
}
