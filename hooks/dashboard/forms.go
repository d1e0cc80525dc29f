package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The form decoders: every value a form or query sends is read here and
// refused with a message naming the field when it is not what the page
// expects (FuzzDecoders runs them on arbitrary input).

// MaxPastedIDs bounds one bulk paste.
const MaxPastedIDs = 10000

// fieldError is a form value that is not what the page expects.
func fieldError(entity, field, reason string) error {
	return &runtime.ValidationError{Entity: entity, Field: field, Reason: reason}
}

// ParseIDList reads ids pasted one per line, or separated by commas,
// semicolons or white space: each kept once, in order, each a valid id.
func ParseIDList(entity, field, s string) ([]string, error) {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) })
	if len(parts) == 0 {
		return nil, fieldError(entity, field, "is empty: paste at least one id")
	}
	if len(parts) > MaxPastedIDs {
		return nil, fieldError(entity, field, fmt.Sprintf("has %d ids, at most %d at once", len(parts), MaxPastedIDs))
	}
	seen := make(map[string]bool, len(parts))
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if err := authz.CheckID(entity, field, p); err != nil {
			return nil, fieldError(entity, field, fmt.Sprintf("id %q: %s", clip(p), reasonOf(err)))
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// reasonOf is a validation error's reason alone (the form names the field).
func reasonOf(err error) string {
	if ve, ok := err.(*runtime.ValidationError); ok {
		return ve.Reason
	}
	return err.Error()
}

// clip shortens a value quoted back in a message.
func clip(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}

// ParseRevision reads the hidden rev field: the store revision the page
// showed, which the write must still find (else: changed by someone else).
func ParseRevision(v url.Values) (radmin.IfMatch, error) {
	s := v.Get("rev")
	if s == "" {
		return radmin.IfMatch{}, fieldError("form", "rev", "is missing: reload the page")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return radmin.IfMatch{}, fieldError("form", "rev", fmt.Sprintf("is %q, not a revision: reload the page", clip(s)))
	}
	return radmin.Expect(n), nil
}

// ParseListQuery reads a list page's q, page and per_page.
func ParseListQuery(v url.Values, perPage int) (radmin.ListQuery, error) {
	lq := radmin.ListQuery{Q: v.Get("q"), PerPage: perPage}
	if len(lq.Q) > 200 {
		return lq, fieldError("search", "q", "is longer than 200 characters")
	}
	if s := v.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1<<30 {
			return lq, fieldError("search", "page", fmt.Sprintf("is %q, must be a page number from 1", clip(s)))
		}
		lq.Page = n - 1
	}
	if s := v.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > radmin.MaxPerPage {
			return lq, fieldError("search", "per_page", fmt.Sprintf("is %q, must be 1–%d", clip(s), radmin.MaxPerPage))
		}
		lq.PerPage = n
	}
	return lq, lq.Check()
}

// FormText reads a text field: trimmed, valid UTF-8, at most max bytes;
// required refuses an empty one.
func FormText(v url.Values, entity, field string, max int, required bool) (string, error) {
	s := strings.TrimSpace(v.Get(field))
	if required && s == "" {
		return "", fieldError(entity, field, "is required")
	}
	if len(s) > max {
		return "", fieldError(entity, field, fmt.Sprintf("is %d bytes long, at most %d", len(s), max))
	}
	if !utf8.ValidString(s) {
		return "", fieldError(entity, field, "is not valid UTF-8 text")
	}
	return s, nil
}

// parseForm reads a POSTed form (the CSRF check already did for most).
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return fieldError("form", "body", "could not be read: "+err.Error())
	}
	return nil
}

// Pager is a list's position for the pager partial.
type Pager struct {
	Page, Pages, Total int
	// Base is the list's URL with its query, without page.
	Base url.URL
}

// NewPager is the pager of a page of total items.
func NewPager(base url.URL, page, perPage, total int) Pager {
	pages := (total + perPage - 1) / perPage
	q := base.Query()
	q.Del("page")
	q.Del("fragment")
	base.RawQuery = q.Encode()
	return Pager{Page: page, Pages: pages, Total: total, Base: base}
}

// Href is the URL of 0-based page p.
func (p Pager) Href(page int) string {
	u := p.Base
	q := u.Query()
	if page > 0 {
		q.Set("page", strconv.Itoa(page+1))
	}
	u.RawQuery = q.Encode()
	return u.RequestURI()
}

// pathEscape escapes an id for a dashboard URL path.
func pathEscape(id string) string { return url.PathEscape(id) }

// urlQueryEscape escapes a value for a dashboard URL query.
func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// joinValues joins a repeated form field (checkboxes, a multi-select)
// for ParseIDList.
func joinValues(vs []string) string { return strings.Join(vs, "\n") }
