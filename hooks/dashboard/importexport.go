package dashboard

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Import and export. An import replaces the whole model, so it is two
// steps: upload (or paste) a document, see what it would add, change and
// remove (radmin.PlanImport against the current model), then apply it —
// checked against the revision the preview was computed at, so a change
// made in between is "changed by someone else — reload", and confirmed
// explicitly when it removes anything. The upload shows its progress
// (static/importexport.js). Export downloads the document in the
// extension's format, or the full backup with applications and profiles.

// MaxImportBytes bounds an uploaded document (the admin API's default).
const MaxImportBytes = 64 << 20

// previewListMax is how many ids each list of the preview names.
const previewListMax = 50

func (d *Dashboard) importExportPage() Page {
	// The previewed documents wait here for their apply: the page never
	// sends a document back (an extension export holds its API key).
	st := newUploads(d.now)
	return Page{Name: "import", Title: "Import / export", Href: Prefix + "import", Views: []string{"import-preview"}, Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "import", Handle: d.importShow},
		{Method: http.MethodPost, Path: Prefix + "import/preview", Scope: radmin.ScopeImport, MaxBody: 2*MaxImportBytes + 1<<20,
			Handle: func(w http.ResponseWriter, r *http.Request, c *Call) error { return d.importPreview(w, r, c, st) }},
		{Method: http.MethodPost, Path: Prefix + "import/apply", Scope: radmin.ScopeImport,
			Handle: func(w http.ResponseWriter, r *http.Request, c *Call) error { return d.importApply(w, r, c, st) }},
		{Method: http.MethodGet, Path: Prefix + "export", Scope: radmin.ScopeExport, Handle: d.exportDownload},
	}}
}

// Uploads kept for their apply: how many, how long.
const (
	MaxPendingImports = 4
	PendingImportTTL  = 15 * time.Minute
)

// uploads holds previewed documents until applied, for the session that
// uploaded them, by a random token the preview's apply form carries.
type uploads struct {
	mu    sync.Mutex
	now   func() time.Time
	items map[string]upload
}

type upload struct {
	doc     *authz.Document
	bytes   int
	owner   string
	expires time.Time
}

func newUploads(now func() time.Time) *uploads {
	return &uploads{now: now, items: map[string]upload{}}
}

// owner names a session: its key and its CSRF token (one per session).
func owner(c *Call) string { return c.Key.ID + "\x00" + c.CSRF }

// put keeps doc for owner and returns its token; the oldest goes when full.
func (u *uploads) put(owner string, doc *authz.Document, n int) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	for tok, it := range u.items {
		if now.After(it.expires) {
			delete(u.items, tok)
		}
	}
	for len(u.items) >= MaxPendingImports {
		oldest := ""
		for tok, it := range u.items {
			if oldest == "" || it.expires.Before(u.items[oldest].expires) {
				oldest = tok
			}
		}
		delete(u.items, oldest)
	}
	tok := rand.Text()
	u.items[tok] = upload{doc: doc, bytes: n, owner: owner, expires: now.Add(PendingImportTTL)}
	return tok
}

// get returns the document of tok if owner uploaded it and it is current.
func (u *uploads) get(owner, tok string) (upload, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	it, ok := u.items[tok]
	if !ok || it.owner != owner || u.now().After(it.expires) {
		return upload{}, false
	}
	return it, true
}

// drop forgets tok (applied).
func (u *uploads) drop(tok string) {
	u.mu.Lock()
	delete(u.items, tok)
	u.mu.Unlock()
}

// ErrUploadGone is an apply whose preview is no longer kept.
var ErrUploadGone = fmt.Errorf("the previewed document is no longer kept (previews last %s; at most %d wait at once): upload it again: %w",
	PendingImportTTL, MaxPendingImports, runtime.ErrInvalid)

type importData struct {
	Revision uint64
	CanFull  bool
}

func (d *Dashboard) importShow(w http.ResponseWriter, r *http.Request, c *Call) error {
	rev, err := d.svc.Store().Revision(r.Context())
	if err != nil {
		return err
	}
	_, full := d.svc.Store().(authz.ProfileLister)
	d.Render(w, c, http.StatusOK, "import", "Import / export", importData{Revision: rev, CanFull: full}, nil)
	return nil
}

// entityPreview is one kind of entity in the preview.
type entityPreview struct {
	Kind                    string
	Added, Changed, Removed []ref
	// More* count what the lists leave out.
	MoreAdded, MoreChanged, MoreRemoved int
	Unchanged                           int
}

type previewData struct {
	Plan        radmin.ImportPlan
	Entities    []entityPreview
	Destructive bool
	Removals    string
	// Upload is the token of the kept document the apply form names.
	Upload string
	Counts radmin.ImportCounts
	Bytes  int
}

// readImportDocument reads the document from the uploaded file or, when
// none was chosen, the pasted text.
func readImportDocument(r *http.Request) ([]byte, error) {
	if r.MultipartForm != nil {
		if fh, ok := r.MultipartForm.File["file"]; ok && len(fh) > 0 && fh[0].Size > 0 {
			f, err := fh[0].Open()
			if err != nil {
				return nil, fieldError("import", "file", "could not be read: "+err.Error())
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, MaxImportBytes+1))
			if err != nil {
				return nil, fieldError("import", "file", "could not be read: "+err.Error())
			}
			if len(b) > MaxImportBytes {
				return nil, fieldError("import", "file", fmt.Sprintf("is over %d MiB", MaxImportBytes>>20))
			}
			return b, nil
		}
	}
	doc := r.PostFormValue("document")
	if strings.TrimSpace(doc) == "" {
		return nil, fieldError("import", "document", "is empty: choose a file or paste a document")
	}
	if len(doc) > MaxImportBytes {
		return nil, fieldError("import", "document", fmt.Sprintf("is over %d MiB", MaxImportBytes>>20))
	}
	return []byte(doc), nil
}

// parseImportForm reads an import form, multipart (a file) or not.
func parseImportForm(r *http.Request) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		if r.MultipartForm == nil {
			if err := r.ParseMultipartForm(1 << 20); err != nil {
				return fieldError("form", "body", "could not be read: "+err.Error())
			}
		}
		return nil
	}
	return parseForm(r)
}

func (d *Dashboard) importRefuse(w http.ResponseWriter, r *http.Request, c *Call, err error) error {
	rev, rerr := d.svc.Store().Revision(r.Context())
	if rerr != nil {
		return rerr
	}
	_, full := d.svc.Store().(authz.ProfileLister)
	f := FormError("import", r, err, map[string]string{"file": "file", "document": "document"})
	if ve := (*runtime.ValidationError)(nil); errors.As(err, &ve) && ve.Entity != "import" && ve.Entity != "form" {
		// A document that does not validate: the message names the
		// entity, id and field inside it.
		f.Fields, f.Message = map[string]string{}, "The document is not valid: "+sentence(err.Error())+" Nothing was changed."
	}
	if f.Values == nil {
		f.Values = r.PostForm
	}
	d.Render(w, c, errorStatus(err), "import", "Import / export", importData{Revision: rev, CanFull: full}, f)
	return nil
}

func (d *Dashboard) importPreview(w http.ResponseWriter, r *http.Request, c *Call, st *uploads) error {
	if err := parseImportForm(r); err != nil {
		return d.importRefuse(w, r, c, err)
	}
	raw, err := readImportDocument(r)
	if err != nil {
		return d.importRefuse(w, r, c, err)
	}
	doc, err := authz.ParseDocument(raw)
	if err != nil {
		return d.importRefuse(w, r, c, err)
	}
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return err
	}
	data := previewFor(m.Document(), doc, m.Revision())
	data.Bytes = len(raw)
	data.Upload = st.put(owner(c), doc, len(raw))
	d.Render(w, c, http.StatusOK, "import-preview", "Import preview", data, nil)
	return nil
}

// previewFor is the plan of importing next over cur, with names.
func previewFor(cur, next *authz.Document, rev uint64) previewData {
	plan := radmin.PlanImport(cur, next, rev)
	names := func(docs ...*authz.Document) map[string]string {
		out := map[string]string{}
		for _, doc := range docs {
			for _, g := range doc.Groups {
				out["group "+g.ID] = g.Name
			}
			for _, x := range doc.Roles {
				out["role "+x.ID] = x.Name + " (" + x.ApplicationID + ")"
			}
			for _, x := range doc.Permissions {
				out["permission "+x.ID] = x.Name + " (" + x.ApplicationID + ")"
			}
			if doc.Claimsmith != nil {
				for _, a := range doc.Claimsmith.Applications {
					out["application "+a.ClientID] = a.Name
				}
			}
		}
		return out
	}
	byName := names(next, cur)
	refs := func(kind string, ids []string) ([]ref, int) {
		out := make([]ref, 0, min(len(ids), previewListMax))
		for _, id := range ids[:min(len(ids), previewListMax)] {
			out = append(out, ref{ID: id, Name: byName[kind+" "+id]})
		}
		return out, len(ids) - len(out)
	}
	data := previewData{Plan: plan, Destructive: plan.Destructive(), Removals: plan.Removals(), Counts: radmin.CountsOf(next)}
	for _, e := range []struct {
		kind string
		d    radmin.EntityDiff
	}{{"group", plan.Groups}, {"role", plan.Roles}, {"permission", plan.Permissions}, {"application", plan.Applications}} {
		p := entityPreview{Kind: e.kind, Unchanged: e.d.Unchanged}
		p.Added, p.MoreAdded = refs(e.kind, e.d.Added)
		p.Changed, p.MoreChanged = refs(e.kind, e.d.Changed)
		p.Removed, p.MoreRemoved = refs(e.kind, e.d.Removed)
		data.Entities = append(data.Entities, p)
	}
	return data
}

func (d *Dashboard) importApply(w http.ResponseWriter, r *http.Request, c *Call, st *uploads) error {
	// Multipart when the page's script sends it (with its progress).
	if err := parseImportForm(r); err != nil {
		return d.importRefuse(w, r, c, err)
	}
	tok := r.PostFormValue("upload")
	up, ok := st.get(owner(c), tok)
	if !ok {
		return d.importRefuse(w, r, c, ErrUploadGone)
	}
	doc := up.doc
	m, err := ParseRevision(r.PostForm)
	if err != nil {
		return d.importRefuse(w, r, c, err)
	}
	replace := r.PostFormValue("replace") != ""
	res, err := d.apply(r, c, radmin.ImportChange(doc, replace), m)
	if err != nil {
		var de *radmin.DestructiveImportError
		if errors.As(err, &de) || isConflict(err) {
			// Show the preview again, as of now, with the message on it.
			model, merr := d.svc.Model(r.Context())
			if merr != nil {
				return merr
			}
			data := previewFor(model.Document(), doc, model.Revision())
			data.Bytes, data.Upload = up.bytes, tok
			f := FormError("apply", r, err, nil)
			if de != nil {
				f.Message = "This import removes " + de.Plan.Removals() + ": tick the confirmation to replace them. Nothing was changed."
			}
			d.Render(w, c, errorStatus(err), "import-preview", "Import preview", data, f)
			return nil
		}
		return d.importRefuse(w, r, c, err)
	}
	st.drop(tok)
	n := radmin.CountsOf(doc)
	d.redirectFlash(w, r, Prefix+"import", fmt.Sprintf("Imported: %d groups, %d roles, %d permissions, %d applications (revision %d).",
		n.Groups, n.Roles, n.Permissions, n.Applications, res.Revision))
	return nil
}

// exportDownload sends the document as a file: the extension's format, or
// with ?full=1 the full backup (applications and profiles).
func (d *Dashboard) exportDownload(w http.ResponseWriter, r *http.Request, c *Call) error {
	full := false
	switch v := r.URL.Query().Get("full"); v {
	case "", "0", "false":
	case "1", "true":
		full = true
	default:
		return fieldError("export", "full", fmt.Sprintf("is %q, must be 1 or 0", clip(v)))
	}
	m, err := d.svc.Model(r.Context())
	if err != nil {
		return err
	}
	opt := authz.ExportOptions{Full: full}
	if full {
		pl, ok := d.svc.Store().(authz.ProfileLister)
		if !ok {
			return fmt.Errorf("this store cannot list profiles for a full export: %w", runtime.ErrInvalid)
		}
		if opt.Profiles, err = authz.CollectProfiles(r.Context(), pl); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := authz.Encode(&buf, m.Document(), opt); err != nil {
		return err
	}
	name := "claimsmith-export-rev" + strconv.FormatUint(m.Revision(), 10)
	if full {
		name += "-full"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
	return nil
}
