package dashboard

import (
	"net/http"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// entityPage is what entityWrite needs to know of one entity's page.
type entityPage struct {
	entity, idField string // for the id check's message
	param           string // the path value holding the id
	// refuse re-renders the page with the form's refusal (nothing changed).
	refuse func(id string, err error) error
	// target is where a committed change goes next.
	target func(id string, ch radmin.Change) string
}

// entityWrite reads an entity's form, builds the change from it, commits it
// at the revision the page showed, then goes to the page's target; any
// refusal re-renders the page with its message.
func (d *Dashboard) entityWrite(w http.ResponseWriter, r *http.Request, c *Call, p entityPage, build func(id string) (radmin.Change, string, error)) error {
	id := r.PathValue(p.param)
	if err := authz.CheckID(p.entity, p.idField, id); err != nil {
		return err
	}
	err := parseForm(r)
	var rev radmin.IfMatch
	if err == nil {
		rev, err = ParseRevision(r.PostForm)
	}
	var ch radmin.Change
	var msg string
	if err == nil {
		ch, msg, err = build(id)
	}
	if err == nil {
		_, err = d.apply(r, c, ch, rev)
	}
	if err != nil {
		return p.refuse(id, err)
	}
	d.redirectFlash(w, r, p.target(id, ch), msg)
	return nil
}
