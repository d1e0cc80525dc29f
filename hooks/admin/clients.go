package admin

import (
	"net/http"

	"github.com/claimsmith/claimsmith/hooks"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// adminClients serves /api/clients: OAuth clients of the token endpoint
// registered in the store (runtime/admin clients). A secret appears only in
// the answer of create and rotate; lists and gets never show it or its hash.
// The exchange section's clients are not listed and their ids cannot be
// registered (they take precedence).
type adminClients struct{ *adminCore }

// callerOf is the audited caller and the If-Match of a write.
func (c *adminCore) callerOf(r *http.Request, call *adminCall) (radmin.Caller, radmin.IfMatch, error) {
	expected, pinned, err := ifMatch(r)
	if err != nil {
		return radmin.Caller{}, radmin.IfMatch{}, err
	}
	var m radmin.IfMatch
	if pinned {
		m = radmin.Expect(expected)
	}
	return radmin.Caller{KeyID: call.key.ID, KeyName: call.key.Name, RequestID: call.reqID}, m, nil
}

func (h adminClients) list(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	page, err := h.svc.Clients(r.Context(), lq)
	return writePage(w, r, "clients", page, err)
}

func (h adminClients) get(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	v, rev, err := h.svc.Client(r.Context(), r.PathValue("client_id"))
	if err != nil {
		return err
	}
	if notModified(w, r, rev) {
		return nil
	}
	hooks.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (h adminClients) create(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	var spec radmin.ClientSpec
	if err := h.decodeBody(w, r, "client", &spec); err != nil {
		return err
	}
	caller, m, err := h.callerOf(r, c)
	if err != nil {
		return err
	}
	cred, res, err := h.svc.CreateClient(r.Context(), caller, spec, h.configClients, m)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/clients/"+spec.ClientID)
	return writeEntity(w, http.StatusCreated, writeResult{revision: res.Revision}, cred)
}

func (h adminClients) rotate(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	caller, m, err := h.callerOf(r, c)
	if err != nil {
		return err
	}
	cred, res, err := h.svc.RotateClientSecret(r.Context(), caller, r.PathValue("client_id"), m)
	if err != nil {
		return err
	}
	return writeEntity(w, http.StatusOK, writeResult{revision: res.Revision}, cred)
}

func (h adminClients) delete(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	caller, m, err := h.callerOf(r, c)
	if err != nil {
		return err
	}
	res, err := h.svc.DeleteClient(r.Context(), caller, r.PathValue("client_id"), m)
	if err != nil {
		return err
	}
	return noContent(w, writeResult{revision: res.Revision})
}
