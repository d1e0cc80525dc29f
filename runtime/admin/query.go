package admin

import (
	"context"
	"fmt"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Paging defaults of the list queries.
const (
	DefaultPerPage = 100
	MaxPerPage     = 1000
)

// ListQuery is the paging and filter of every list: Page (0-based, as the
// extension's member lists), PerPage, Q (case-insensitive substring of the
// name, or of the field named by Field as the extension's search) and Name
// (case-insensitive exact match).
type ListQuery struct {
	Page, PerPage int
	Q, Field      string
	Name          string
}

// Check validates the query and fills the defaults.
func (lq *ListQuery) Check() error {
	if lq.PerPage == 0 {
		lq.PerPage = DefaultPerPage
	}
	if lq.Page < 0 || lq.Page > 1<<30 {
		return &runtime.ValidationError{Entity: "query", Field: "page", Reason: fmt.Sprintf("is %d, must be an integer 0–%d", lq.Page, 1<<30)}
	}
	if lq.PerPage < 1 || lq.PerPage > MaxPerPage {
		return &runtime.ValidationError{Entity: "query", Field: "per_page", Reason: fmt.Sprintf("is %d, must be an integer 1–%d", lq.PerPage, MaxPerPage)}
	}
	switch lq.Field {
	case "", "name", "description":
	default:
		return &runtime.ValidationError{Entity: "query", Field: "field", Reason: fmt.Sprintf("is %q, must be name or description", lq.Field)}
	}
	lq.Q = strings.ToLower(lq.Q)
	return nil
}

// Match applies Q and Name to an item's name and description.
func (lq ListQuery) Match(name, description string) bool {
	if lq.Name != "" && !strings.EqualFold(lq.Name, name) {
		return false
	}
	if lq.Q != "" {
		hay := name
		if lq.Field == "description" {
			hay = description
		}
		return containsFold(hay, lq.Q)
	}
	return true
}

// containsFold reports whether the lower-cased needle occurs in hay, case
// folded; ASCII (the common case) is compared without allocating.
func containsFold(hay, lowerNeedle string) bool {
	for i := 0; i < len(hay); i++ {
		if hay[i] >= 0x80 {
			return strings.Contains(strings.ToLower(hay), lowerNeedle)
		}
	}
	n := len(lowerNeedle)
	for i := 0; i+n <= len(hay); i++ {
		j := 0
		for ; j < n; j++ {
			c := hay[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerNeedle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// Page is one page of a filtered list.
type Page[T any] struct {
	Items []T
	// Total counts the items after filtering, over all pages.
	Total         int
	Page, PerPage int
	// Revision is the store revision the list was read at (the ETag).
	Revision uint64
}

// Paginate cuts the page lq asks for out of items (never nil).
func Paginate[T any](items []T, lq ListQuery, rev uint64) Page[T] {
	total := len(items)
	start := min(lq.Page*lq.PerPage, total)
	end := min(start+lq.PerPage, total)
	page := items[start:end]
	if page == nil {
		page = []T{}
	}
	return Page[T]{Items: page, Total: total, Page: lq.Page, PerPage: lq.PerPage, Revision: rev}
}

// Groups lists the groups matching lq, in storage order.
func (s *Service) Groups(ctx context.Context, lq ListQuery) (Page[authz.Group], error) {
	if err := lq.Check(); err != nil {
		return Page[authz.Group]{}, err
	}
	m, err := s.store.Snapshot(ctx)
	if err != nil {
		return Page[authz.Group]{}, err
	}
	var out []authz.Group
	for _, g := range m.Document().Groups {
		if lq.Match(g.Name, g.Description) {
			out = append(out, g)
		}
	}
	return Paginate(out, lq, m.Revision()), nil
}

// Roles lists the roles matching lq and, when set, the application id and
// type, in storage order.
func (s *Service) Roles(ctx context.Context, lq ListQuery, appID, appType string) (Page[authz.Role], error) {
	if err := lq.Check(); err != nil {
		return Page[authz.Role]{}, err
	}
	m, err := s.store.Snapshot(ctx)
	if err != nil {
		return Page[authz.Role]{}, err
	}
	var out []authz.Role
	for _, r := range m.Document().Roles {
		if (appID == "" || r.ApplicationID == appID) && (appType == "" || r.ApplicationType == appType) && lq.Match(r.Name, r.Description) {
			out = append(out, r)
		}
	}
	return Paginate(out, lq, m.Revision()), nil
}

// Permissions lists the permissions matching lq and, when set, the
// application id and type, in storage order.
func (s *Service) Permissions(ctx context.Context, lq ListQuery, appID, appType string) (Page[authz.Permission], error) {
	if err := lq.Check(); err != nil {
		return Page[authz.Permission]{}, err
	}
	m, err := s.store.Snapshot(ctx)
	if err != nil {
		return Page[authz.Permission]{}, err
	}
	var out []authz.Permission
	for _, p := range m.Document().Permissions {
		if (appID == "" || p.ApplicationID == appID) && (appType == "" || p.ApplicationType == appType) && lq.Match(p.Name, p.Description) {
			out = append(out, p)
		}
	}
	return Paginate(out, lq, m.Revision()), nil
}

// Applications lists the registered applications whose name or client_id
// matches lq.
func (s *Service) Applications(ctx context.Context, lq ListQuery) (Page[authz.Application], error) {
	if err := lq.Check(); err != nil {
		return Page[authz.Application]{}, err
	}
	doc, rev, err := s.store.Records(ctx, authz.Footprint{Applications: true})
	if err != nil {
		return Page[authz.Application]{}, err
	}
	var out []authz.Application
	if doc.Claimsmith != nil {
		for _, a := range doc.Claimsmith.Applications {
			if lq.Match(a.Name, "") || lq.Match(a.ClientID, "") {
				out = append(out, a.Redacted())
			}
		}
	}
	return Paginate(out, lq, rev), nil
}
