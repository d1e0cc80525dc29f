package dashboard

import (
	"net/http"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Every write of the dashboard is a radmin.Change committed by the admin
// service (Service.Apply: revision check, commit, audit record), built as
// the admin API builds the same write: the same action names, entities and
// audited state, so the audit log reads the same whichever door a change
// came through.

// apply commits ch for the signed-in key, expecting revision m.
func (d *Dashboard) apply(r *http.Request, c *Call, ch radmin.Change, m radmin.IfMatch) (radmin.Result, error) {
	return d.svc.Apply(r.Context(), c.Caller(), ch, m)
}

func findGroup(doc *authz.Document, id string) *authz.Group {
	for i := range doc.Groups {
		if doc.Groups[i].ID == id {
			return &doc.Groups[i]
		}
	}
	return nil
}

func findRole(doc *authz.Document, id string) *authz.Role {
	for i := range doc.Roles {
		if doc.Roles[i].ID == id {
			return &doc.Roles[i]
		}
	}
	return nil
}

func findPermission(doc *authz.Document, id string) *authz.Permission {
	for i := range doc.Permissions {
		if doc.Permissions[i].ID == id {
			return &doc.Permissions[i]
		}
	}
	return nil
}

// entityChange is a write to one group, role or permission, audited with
// the whole entity before and after.
func entityChange(action, entity, id string, ops ...authz.Op) radmin.Change {
	ch := radmin.Change{Action: action, Entity: entity, ID: id, Ops: ops}
	switch entity {
	case "group":
		ch.Reads = authz.Footprint{Groups: []string{id}}
		ch.State = func(doc *authz.Document) any {
			if g := findGroup(doc, id); g != nil {
				return g
			}
			return nil
		}
	case "role":
		ch.Reads = authz.Footprint{Roles: []string{id}}
		ch.State = func(doc *authz.Document) any {
			if r := findRole(doc, id); r != nil {
				return r
			}
			return nil
		}
	case "permission":
		ch.Reads = authz.Footprint{Permissions: []string{id}}
		ch.State = func(doc *authz.Document) any {
			if p := findPermission(doc, id); p != nil {
				return p
			}
			return nil
		}
	case "application":
		ch.Reads = authz.Footprint{Applications: true}
		ch.State = func(doc *authz.Document) any {
			if doc.Claimsmith != nil {
				for i := range doc.Claimsmith.Applications {
					if doc.Claimsmith.Applications[i].ClientID == id {
						// Never the client secret's hash in the audit log.
						return doc.Claimsmith.Applications[i].Redacted()
					}
				}
			}
			return nil
		}
	}
	return ch
}

// listChange is a write to one id list of a group or role, audited as the
// ids it names (radmin.IDListState), as the API's sub-resource writes.
func listChange(action, entity, id, field string, ids []string, op authz.Op) radmin.Change {
	ch := entityChange(action, entity, id, op)
	ch.State = radmin.IDListState(entity, id, field, ids)
	return ch
}
