package admin

import (
	"bytes"
	_ "embed"
	"net/http"
	"strconv"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// adminIO serves POST /api/import and GET /api/export in the extension's
// document format.
type adminIO struct{ *adminCore }

// importSummary is the answer of an import.
type importSummary struct {
	Revision uint64 `json:"revision"`
	radmin.ImportCounts
}

func summarize(doc *authz.Document, rev uint64) importSummary {
	return importSummary{Revision: rev, ImportCounts: radmin.CountsOf(doc)}
}

// importPreview is the answer of a dry run: the plan, and whether the
// import would need replace=true.
type importPreview struct {
	DryRun          bool `json:"dry_run"`
	RequiresReplace bool `json:"requires_replace"`
	radmin.ImportPlan
}

// importDoc replaces the whole document, atomically, after validating all
// of it: an invalid document is a 400 naming the entity, _id and field, and
// changes nothing. An extension export keeps the registered applications;
// a full export (claimsmith section) replaces them and the profiles. An
// import that would remove entities the store holds is refused (409)
// without ?replace=true; ?dry_run=true answers what it would add, remove
// and change, and changes nothing.
func (h adminIO) importDoc(w http.ResponseWriter, r *http.Request, c *adminCall) error {
	replace, err := boolQuery(r, "replace")
	if err != nil {
		return err
	}
	dry, err := boolQuery(r, "dry_run")
	if err != nil {
		return err
	}
	body, err := readJSON(w, r, h.maxImport, "document")
	if err != nil {
		return err
	}
	doc, err := authz.ParseDocument(body)
	if err != nil {
		return err
	}
	if dry {
		plan, err := h.svc.PlanImport(r.Context(), doc)
		if err != nil {
			return err
		}
		w.Header().Set("ETag", etagOf(plan.Revision))
		hooks.WriteJSON(w, http.StatusOK, importPreview{DryRun: true, RequiresReplace: plan.Destructive(), ImportPlan: plan})
		return nil
	}
	res, err := h.commit(r, c, radmin.ImportChange(doc, replace))
	if err != nil {
		return err
	}
	return writeEntity(w, http.StatusOK, res, summarize(res.after, res.revision))
}

// exportDoc writes the document exactly as the extension exports it (the
// claimsmith section with applications and profiles only with ?full=true).
func (h adminIO) exportDoc(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	full, err := boolQuery(r, "full")
	if err != nil {
		return err
	}
	m, done, err := h.snapshot(w, r)
	if err != nil || done {
		return err
	}
	opt := authz.ExportOptions{Full: full}
	if full {
		if h.profiles == nil {
			return &runtime.ValidationError{Entity: "query", Field: "full", Reason: "this store cannot list profiles for a full export"}
		}
		if opt.Profiles, err = authz.CollectProfiles(r.Context(), h.profiles); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := authz.Encode(&buf, m.Document(), opt); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// adminAuditAPI serves GET /api/audit: newest first, paged, filterable by
// action, key name and entity id.
type adminAuditAPI struct{ *adminCore }

func (h adminAuditAPI) list(w http.ResponseWriter, r *http.Request, _ *adminCall) error {
	lq, err := parseListQuery(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := h.svc.AuditLog(r.Context(), radmin.AuditQuery{Page: lq.Page, PerPage: lq.PerPage,
		Action: q.Get("action"), KeyName: q.Get("key"), EntityID: q.Get("entity_id")})
	if err != nil {
		return err
	}
	recs := page.Records
	if recs == nil {
		recs = []radmin.Record{}
	}
	hooks.WriteJSON(w, http.StatusOK, map[string]any{"records": recs, "total": page.Total, "page": lq.Page, "per_page": lq.PerPage})
	return nil
}

//go:embed openapi.json
var openAPIDoc []byte

// adminDocs serves GET /api/openapi.json (no key: it describes, it holds
// nothing secret).
type adminDocs struct{}

func (adminDocs) openapi(w http.ResponseWriter, _ *http.Request, _ *adminCall) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
	return nil
}
