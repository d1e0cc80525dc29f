package admin

import "github.com/claimsmith/claimsmith/runtime/authz"

// IDListState is the audit State of a write to one id list of a group
// (field "members", "nested", "roles", "mappings") or of a role ("users",
// "permissions"): the entity with the written list cut down to the ids the
// write names, the lists that grow with the user base (a group's members,
// a role's users) left out unless written, and every other field as it is.
// The record's before and after then differ by exactly the ids added or
// removed, and its size is that of the request, not of the entity: a
// member written to a group of thousands costs what a member written to a
// group of three costs. Readers tell such a record by its action
// (group.members.add, …).
func IDListState(entity, id, field string, ids []string) func(*authz.Document) any {
	named := make(map[string]bool, len(ids))
	for _, x := range ids {
		named[x] = true
	}
	keep := func(list []string) []string {
		var out []string
		for _, x := range list {
			if named[x] {
				out = append(out, x)
			}
		}
		return out
	}
	return func(doc *authz.Document) any {
		if doc == nil {
			return nil
		}
		switch entity {
		case "group":
			for i := range doc.Groups {
				if doc.Groups[i].ID != id {
					continue
				}
				g := doc.Groups[i] // a copy: the document stays as it is
				if field != "members" {
					g.Members = nil
				}
				switch field {
				case "members":
					g.Members = keep(g.Members)
				case "nested":
					g.Nested = keep(g.Nested)
				case "roles":
					g.Roles = keep(g.Roles)
				case "mappings":
					var ms []authz.Mapping
					for _, m := range g.Mappings {
						if named[m.ID] {
							ms = append(ms, m)
						}
					}
					g.Mappings = ms
				}
				return g
			}
		case "role":
			for i := range doc.Roles {
				if doc.Roles[i].ID != id {
					continue
				}
				r := doc.Roles[i]
				if field != "users" {
					r.Users = nil
				}
				switch field {
				case "users":
					r.Users = keep(r.Users)
				case "permissions":
					r.Permissions = keep(r.Permissions)
				}
				return r
			}
		}
		return nil
	}
}
