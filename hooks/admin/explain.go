package admin

import (
	"net/http"
	"strings"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// explain answers why the user gets what a login at a client gets:
// GET /api/users/{id}/explain?client_id=…[&audience=…&connection=…&groups=a,b].
// Its effective lists are those of /policy, each entry with its reasons
// (direct membership → nested parents → role → permission, direct role
// assignment, IdP-group mapping); the stored profile comes with it. No
// ETag: the profile changes outside the model's revision.
func (h adminUsers) explain(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	q := r.URL.Query()
	var idpGroups []string
	if g := q.Get("groups"); g != "" {
		for _, s := range strings.Split(g, ",") {
			if s = strings.TrimSpace(s); s != "" {
				idpGroups = append(idpGroups, s)
			}
		}
	}
	v, err := h.svc.Explain(r.Context(), authz.PolicyQuery{UserID: r.PathValue("id"), ClientID: q.Get("client_id"),
		Audience: q.Get("audience"), Connection: q.Get("connection"), IdPGroups: idpGroups})
	if err != nil {
		return err
	}
	hooks.WriteJSON(w, http.StatusOK, v)
	return nil
}
