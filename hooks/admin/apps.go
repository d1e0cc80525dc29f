package admin

import (
	"fmt"
	"net/http"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// adminApps serves /api/applications: the clients claimsmith knows (name
// and string metadata such as required_roles), which the extension left to
// Auth0.
type adminApps struct{ *adminCore }

// appBody is the body of POST /api/applications (client_id required) and
// PUT /api/applications/{client_id} (client_id optional, must match).
type appBody struct {
	ClientID *string           `json:"client_id"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata"`
}

func findApp(doc *authz.Document, clientID string) (*authz.Application, error) {
	if doc.Claimsmith != nil {
		for i := range doc.Claimsmith.Applications {
			if doc.Claimsmith.Applications[i].ClientID == clientID {
				return &doc.Claimsmith.Applications[i], nil
			}
		}
	}
	return nil, fmt.Errorf("application %q: %w", clientID, runtime.ErrNotFound)
}

func appState(id string) audited {
	return audited{fp: authz.Footprint{Applications: true}, render: func(doc *authz.Document) any {
		if a, err := findApp(doc, id); err == nil {
			r := a.Redacted()
			return &r
		}
		return nil
	}}
}

func (h adminApps) list(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	page, err := h.svc.Applications(r.Context(), lq)
	return writePage(w, r, "applications", page, err)
}

func (h adminApps) get(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	a, err := findApp(m.Document(), r.PathValue("client_id"))
	if err != nil {
		return err
	}
	hooks.WriteJSON(w, http.StatusOK, a.Redacted())
	return nil
}

// create registers a new application; an existing client_id is a 409 (use
// PUT to replace).
func (h adminApps) create(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	var b appBody
	if err := h.decodeBody(w, r, "application", &b); err != nil {
		return err
	}
	if b.ClientID == nil || *b.ClientID == "" {
		return &runtime.ValidationError{Entity: "application", Field: "client_id", Reason: "is required"}
	}
	id := *b.ClientID
	res, err := h.writeWith(r, c, authz.Footprint{Applications: true}, func(view *authz.Document) (adminChange, error) {
		if _, err := findApp(view, id); err == nil {
			return adminChange{}, fmt.Errorf("application %q: %w", id, runtime.ErrExists)
		}
		return adminChange{action: "application.create", entity: "application", id: id, state: appState(id),
			ops: []authz.Op{&authz.PutApplication{Application: authz.Application{ClientID: id, Name: b.Name, Metadata: b.Metadata}}}}, nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/applications/"+id)
	return writeEntity(w, http.StatusCreated, res, appState(id).of(res.after))
}

// put creates or replaces an application (201 when it was new).
func (h adminApps) put(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("client_id")
	var b appBody
	if err := h.decodeBody(w, r, "application", &b); err != nil {
		return err
	}
	if b.ClientID != nil && *b.ClientID != id {
		return &runtime.ValidationError{Entity: "application", ID: id, Field: "client_id", Reason: fmt.Sprintf("is %q, differs from the path", *b.ClientID)}
	}
	created := false
	res, err := h.writeWith(r, c, authz.Footprint{Applications: true}, func(view *authz.Document) (adminChange, error) {
		_, err := findApp(view, id)
		created = err != nil
		action := "application.update"
		if created {
			action = "application.create"
		}
		// PutApplication keeps the OAuth registration (/api/clients).
		return adminChange{action: action, entity: "application", id: id, state: appState(id),
			ops: []authz.Op{&authz.PutApplication{Application: authz.Application{ClientID: id, Name: b.Name, Metadata: b.Metadata}}}}, nil
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeEntity(w, status, res, appState(id).of(res.after))
}

func (h adminApps) delete(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	id := r.PathValue("client_id")
	res, err := h.write(r, c, adminChange{action: "application.delete", entity: "application", id: id, state: appState(id),
		ops: []authz.Op{&authz.DeleteApplication{ClientID: id}}})
	if err != nil {
		return err
	}
	return noContent(w, res)
}
