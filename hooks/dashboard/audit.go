package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// The audit log page: every write, newest first, filtered by actor (key
// name), action, entity id and time, each with the difference between the
// entity before and after.

// AuditPerPage is the audit page's size.
const AuditPerPage = 50

// auditScanLimit bounds the records a time filter looks through (newest
// first): the log has no time index.
const auditScanLimit = 100000

func (d *Dashboard) auditPage() Page {
	return Page{Name: "audit", Title: "Audit log", Href: Prefix + "audit", Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "audit", Handle: d.auditList},
	}}
}

// AuditFilter is the audit page's query.
type AuditFilter struct {
	Actor, Action, Entity string
	From, To              time.Time
	Page                  int // 0-based
}

// timeLayout is what an <input type="datetime-local"> sends.
const timeLayout = "2006-01-02T15:04"

// ParseAuditFilter reads the audit page's query; times are UTC.
func ParseAuditFilter(v url.Values) (AuditFilter, error) {
	f := AuditFilter{Actor: v.Get("actor"), Action: v.Get("action"), Entity: v.Get("entity")}
	for _, x := range []struct{ name, val string }{{"actor", f.Actor}, {"action", f.Action}, {"entity", f.Entity}} {
		if len(x.val) > 1024 {
			return f, fieldError("audit filter", x.name, "is longer than 1024 bytes")
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		s := v.Get(t.name)
		if s == "" {
			continue
		}
		x, err := time.Parse(timeLayout, s)
		if err != nil {
			if x, err = time.Parse(time.RFC3339, s); err != nil {
				return f, fieldError("audit filter", t.name, fmt.Sprintf("is %q, not a time such as 2026-12-04T15:30 (UTC)", clip(s)))
			}
		}
		*t.dst = x.UTC()
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, fieldError("audit filter", "to", "is before from")
	}
	lq, err := ParseListQuery(url.Values{"page": v["page"]}, AuditPerPage)
	if err != nil {
		return f, err
	}
	f.Page = lq.Page
	return f, nil
}

// auditEntry is a record as the page shows it.
type auditEntry struct {
	radmin.Record
	Changes []change
	// Raw is set when before/after are not objects the diff reads.
	RawBefore, RawAfter string
}

// change is one field's difference.
type change struct {
	Field          string
	Before, After  string
	Added, Removed []string
}

type auditData struct {
	Filter        AuditFilter
	From, To      string
	Entries       []auditEntry
	Pager         Pager
	Scanned, Cut  bool
	FilterMessage string
}

func (d *Dashboard) auditList(w http.ResponseWriter, r *http.Request, c *Call) error {
	f, err := ParseAuditFilter(r.URL.Query())
	if err != nil {
		d.Render(w, c, http.StatusBadRequest, "audit", "Audit log", auditData{FilterMessage: sentence(err.Error())}, nil)
		return nil
	}
	data := auditData{Filter: f}
	if !f.From.IsZero() {
		data.From = f.From.Format(timeLayout)
	}
	if !f.To.IsZero() {
		data.To = f.To.Format(timeLayout)
	}
	q := radmin.AuditQuery{KeyName: f.Actor, Action: f.Action, EntityID: f.Entity}
	var recs []radmin.Record
	total := 0
	if f.From.IsZero() && f.To.IsZero() {
		q.Page, q.PerPage = f.Page, AuditPerPage
		p, err := d.svc.AuditLog(r.Context(), q)
		if err != nil {
			return err
		}
		recs, total = p.Records, p.Total
	} else {
		// Newest first: stop at the first record older than From.
		var hits []radmin.Record
		data.Scanned = true
		scanned := 0
	scan:
		for q.Page, q.PerPage = 0, radmin.MaxPerPage; ; q.Page++ {
			p, err := d.svc.AuditLog(r.Context(), q)
			if err != nil {
				return err
			}
			for _, rec := range p.Records {
				if !f.From.IsZero() && rec.Time.Before(f.From) {
					break scan
				}
				if f.To.IsZero() || !rec.Time.After(f.To) {
					hits = append(hits, rec)
				}
			}
			scanned += len(p.Records)
			if len(p.Records) < q.PerPage || (q.Page+1)*q.PerPage >= p.Total {
				break
			}
			if scanned >= auditScanLimit {
				data.Cut = true
				break
			}
		}
		total = len(hits)
		start := min(f.Page*AuditPerPage, total)
		recs = hits[start:min(start+AuditPerPage, total)]
	}
	for _, rec := range recs {
		data.Entries = append(data.Entries, entryOf(rec))
	}
	data.Pager = NewPager(*r.URL, f.Page, AuditPerPage, total)
	d.Render(w, c, http.StatusOK, "audit", "Audit log", data, nil)
	return nil
}

// entryOf computes a record's field-by-field difference.
func entryOf(rec radmin.Record) auditEntry {
	e := auditEntry{Record: rec}
	var before, after map[string]json.RawMessage
	okB := len(rec.Before) == 0 || json.Unmarshal(rec.Before, &before) == nil
	okA := len(rec.After) == 0 || json.Unmarshal(rec.After, &after) == nil
	if !okB || !okA {
		e.RawBefore, e.RawAfter = string(rec.Before), string(rec.After)
		return e
	}
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b, a := before[k], after[k]
		if bytes.Equal(b, a) {
			continue
		}
		ch := change{Field: k, Before: string(b), After: string(a)}
		var bl, al []string
		if (len(b) == 0 || json.Unmarshal(b, &bl) == nil) && (len(a) == 0 || json.Unmarshal(a, &al) == nil) && (bl != nil || al != nil) {
			for _, x := range al {
				if !slices.Contains(bl, x) {
					ch.Added = append(ch.Added, x)
				}
			}
			for _, x := range bl {
				if !slices.Contains(al, x) {
					ch.Removed = append(ch.Removed, x)
				}
			}
			ch.Before, ch.After = "", ""
		}
		e.Changes = append(e.Changes, ch)
	}
	return e
}
