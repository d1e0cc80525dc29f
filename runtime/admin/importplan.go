package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// An import replaces the whole model, so a wrong file (or "{}") can wipe
// every group, role and permission. An import that would remove anything
// the store holds therefore needs an explicit replace confirmation, and
// PlanImport previews what an import would add, remove and change.

// EntityDiff is what an import does to one kind of entity, by _id (client_id
// for applications).
type EntityDiff struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	Unchanged int      `json:"unchanged"`
}

// ImportPlan is what importing a document would do to the current model.
// Applications are untouched (all unchanged) by a document without a
// claimsmith section. User profiles are not part of the plan: a full backup
// replaces them as documented.
type ImportPlan struct {
	// Revision is the store revision the plan was computed at.
	Revision     uint64     `json:"revision"`
	Groups       EntityDiff `json:"groups"`
	Roles        EntityDiff `json:"roles"`
	Permissions  EntityDiff `json:"permissions"`
	Applications EntityDiff `json:"applications"`
}

// Destructive reports whether the import removes any entity.
func (p ImportPlan) Destructive() bool {
	return len(p.Groups.Removed)+len(p.Roles.Removed)+len(p.Permissions.Removed)+len(p.Applications.Removed) > 0
}

// Removals sums up what the import removes, e.g. "3 groups, 1 role".
func (p ImportPlan) Removals() string {
	var parts []string
	for _, c := range []struct {
		n    int
		noun string
	}{{len(p.Groups.Removed), "group"}, {len(p.Roles.Removed), "role"}, {len(p.Permissions.Removed), "permission"},
		{len(p.Applications.Removed), "application"}} {
		if c.n == 1 {
			parts = append(parts, "1 "+c.noun)
		} else if c.n > 1 {
			parts = append(parts, fmt.Sprintf("%d %ss", c.n, c.noun))
		}
	}
	return strings.Join(parts, ", ")
}

// DestructiveImportError refuses an import that would remove entities
// without the replace confirmation. It matches runtime.ErrConflict (409):
// the request is valid, the store's content stands in its way.
type DestructiveImportError struct{ Plan ImportPlan }

func (e *DestructiveImportError) Error() string {
	return fmt.Sprintf("the import would remove %s that the store holds: confirm a replacing import with replace=true "+
		"(claimsmith import --replace), or preview it with dry_run=true (claimsmith import --dry-run)", e.Plan.Removals())
}

// Is reports runtime.ErrConflict.
func (e *DestructiveImportError) Is(target error) bool { return target == runtime.ErrConflict }

// PlanImport compares the current model cur with the document an import
// would install.
func PlanImport(cur, next *authz.Document, rev uint64) ImportPlan {
	p := ImportPlan{Revision: rev}
	p.Groups = diff(cur.Groups, next.Groups, func(g authz.Group) string { return g.ID })
	p.Roles = diff(cur.Roles, next.Roles, func(r authz.Role) string { return r.ID })
	p.Permissions = diff(cur.Permissions, next.Permissions, func(x authz.Permission) string { return x.ID })
	var curApps []authz.Application
	if cur.Claimsmith != nil {
		curApps = cur.Claimsmith.Applications
	}
	if next.Claimsmith != nil {
		p.Applications = diff(curApps, next.Claimsmith.Applications, func(a authz.Application) string { return a.ClientID })
	} else {
		p.Applications = diff(curApps, curApps, func(a authz.Application) string { return a.ClientID })
	}
	return p
}

// diff compares two entity lists by id; changed means a different JSON
// encoding (the stored form).
func diff[T any](cur, next []T, id func(T) string) EntityDiff {
	d := EntityDiff{Added: []string{}, Removed: []string{}, Changed: []string{}}
	old := make(map[string]int, len(cur))
	for i, e := range cur {
		old[id(e)] = i
	}
	seen := make(map[string]bool, len(next))
	for _, e := range next {
		k := id(e)
		seen[k] = true
		i, ok := old[k]
		switch {
		case !ok:
			d.Added = append(d.Added, k)
		case !sameJSON(cur[i], e):
			d.Changed = append(d.Changed, k)
		default:
			d.Unchanged++
		}
	}
	for _, e := range cur {
		if k := id(e); !seen[k] {
			d.Removed = append(d.Removed, k)
		}
	}
	return d
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// ImportCounts sums up a document: the audit before/after of an import.
type ImportCounts struct {
	Groups       int `json:"groups"`
	Roles        int `json:"roles"`
	Permissions  int `json:"permissions"`
	Applications int `json:"applications"`
}

// CountsOf counts doc's entities.
func CountsOf(doc *authz.Document) ImportCounts {
	s := ImportCounts{Groups: len(doc.Groups), Roles: len(doc.Roles), Permissions: len(doc.Permissions)}
	if doc.Claimsmith != nil {
		s.Applications = len(doc.Claimsmith.Applications)
	}
	return s
}

// ImportChange is the audited change of an import of doc (validated by the
// caller). Without replace it is refused with *DestructiveImportError when
// it would remove anything the store holds at the revision it commits on.
func ImportChange(doc *authz.Document, replace bool) Change {
	return Change{Action: "import", Entity: "document", Reads: authz.Footprint{All: true},
		Build: func(view *authz.Document, ch *Change) error {
			if !replace {
				// The view is the whole model: Reads is All.
				if p := PlanImport(view, doc, 0); p.Destructive() {
					return &DestructiveImportError{Plan: p}
				}
			}
			ch.Ops = []authz.Op{&authz.ReplaceDocument{Doc: doc}}
			return nil
		},
		State: func(d *authz.Document) any { return CountsOf(d) },
	}
}

// PlanImport previews an import of doc against the current model.
func (s *Service) PlanImport(ctx context.Context, doc *authz.Document) (ImportPlan, error) {
	m, err := s.store.Snapshot(ctx)
	if err != nil {
		return ImportPlan{}, err
	}
	return PlanImport(m.Document(), doc, m.Revision()), nil
}
