package dashboard

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// postMultipart posts fields and one file as multipart/form-data.
func (b *browser) postMultipart(path string, fields map[string]string, file []byte, hdr ...string) page {
	b.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("file", "export.json")
		_, _ = fw.Write(file)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.f.srv.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// TestImportPreviewThenApply: the sample export uploaded as a file shows
// what it adds and removes and changes nothing; applying without the
// confirmation is refused on the preview, with it commits; an apply on a
// stale preview is "changed by someone else"; an invalid document names
// what is wrong; the export downloads the document.
func TestImportPreviewThenApply(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	sample, err := os.ReadFile("../../samples/data/claimsmith-full.json")
	if err != nil {
		t.Fatal(err)
	}
	v := b.form(Prefix + "import")
	rev := f.revision(t)
	p := b.postMultipart(Prefix+"import/preview", map[string]string{"csrf": v.Get("csrf")}, sample)
	if p.status != 200 {
		t.Fatalf("preview: %d\n%s", p.status, p.body)
	}
	for _, want := range []string{"grp-company", "Company", "g-sales", `id="removes"`, `name="replace"`} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("preview lacks %q:\n%s", want, p.body)
		}
	}
	if f.revision(t) != rev {
		t.Fatal("the preview changed the store")
	}
	if strings.Contains(p.body, "sample-apikey-") {
		t.Fatal("the preview renders the document's API key")
	}
	upload := field(t, p.body, uploadRe)
	apply := with(v, "upload", upload, "rev", field(t, p.body, revRe))
	// Another key cannot apply this upload.
	other := f.browser(t).signIn(f.all)
	if p := other.post(Prefix+"import/apply", with(other.form(Prefix+"import"), "upload", upload, "rev", field(t, p.body, revRe), "replace", "1")); p.status != 400 || !strings.Contains(p.body, "upload it again") {
		t.Fatalf("another session's apply: %d", p.status)
	}
	if p := b.post(Prefix+"import/apply", apply); p.status != 409 || !strings.Contains(p.body, "tick the confirmation") {
		t.Fatalf("apply without confirmation: %d\n%s", p.status, p.body)
	}
	if f.revision(t) != rev {
		t.Fatal("a refused import changed the store")
	}
	stale := with(apply, "replace", "1")
	stale.Set("rev", "999")
	if p := b.post(Prefix+"import/apply", stale); p.status != 409 || !strings.Contains(p.body, "Changed by someone else") {
		t.Fatalf("stale apply: %d\n%s", p.status, p.body)
	}
	if p := b.post(Prefix+"import/apply", with(apply, "replace", "1")); p.status != 303 {
		t.Fatalf("apply: %d\n%s", p.status, p.body)
	}
	if p := b.get(Prefix + "import"); !strings.Contains(p.body, "Imported: 9 groups") {
		t.Fatalf("no flash after the import:\n%s", p.body)
	}

	bad := b.post(Prefix+"import/preview", with(v, "document", `{"groups":[{"_id":"x"}]}`))
	if bad.status != 400 || !strings.Contains(bad.body, "The document is not valid") {
		t.Fatalf("invalid document: %d\n%s", bad.status, bad.body)
	}
	if p := b.post(Prefix+"import/preview", with(v, "document", "")); p.status != 400 || !strings.Contains(p.body, `id="document-err"`) {
		t.Fatalf("empty document: %d", p.status)
	}

	ex := b.get(Prefix + "export?full=1")
	if ex.status != 200 || !strings.Contains(ex.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", ex.status, ex.header)
	}
	var got authz.Document
	if err := json.Unmarshal([]byte(ex.body), &got); err != nil || len(got.Groups) != 9 || got.Claimsmith == nil {
		t.Fatalf("export: %v %+v", err, got)
	}

	r := f.browser(t).signIn(f.read)
	if p := r.get(Prefix + "import"); strings.Contains(p.body, `id="import-form"`) || r.get(Prefix+"export").status != 403 {
		t.Fatal("a read-only key may import or export")
	}
	if p := r.post(Prefix+"import/apply", with(r.form(Prefix+"import"), "upload", upload, "replace", "1", "rev", "9")); p.status != 403 {
		t.Fatalf("read-only apply: %d", p.status)
	}
}

var uploadRe = regexp.MustCompile(`name="upload" value="([^"]+)"`)

// TestImportPreviewExpires: an upload is kept PendingImportTTL; applying
// it later asks for the upload again and changes nothing.
func TestImportPreviewExpires(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	v := b.form(Prefix + "import")
	p := b.post(Prefix+"import/preview", with(v, "document", `{"groups":[{"_id":"g-new","name":"New"}]}`))
	if p.status != 200 {
		t.Fatalf("preview: %d\n%s", p.status, p.body)
	}
	rev := f.revision(t)
	f.clock.Add(PendingImportTTL + time.Minute)
	b = f.browser(t).signIn(f.all) // the old session expired too
	ap := b.post(Prefix+"import/apply", with(b.form(Prefix+"import"), "upload", field(t, p.body, uploadRe), "rev", field(t, p.body, revRe), "replace", "1"))
	if ap.status != 400 || !strings.Contains(ap.body, "upload it again") || f.revision(t) != rev {
		t.Fatalf("expired upload: %d\n%s", ap.status, ap.body)
	}
}

// TestImportApplyMultipart: the page's script sends the apply form as
// multipart/form-data with the CSRF token in a header; it applies (a
// regression: the token of the kept upload was not read from it).
func TestImportApplyMultipart(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t).signIn(f.all)
	v := b.form(Prefix + "import")
	p := b.post(Prefix+"import/preview", with(v, "document", `{"groups":[{"_id":"g-new","name":"New"}]}`))
	ap := b.postMultipart(Prefix+"import/apply", map[string]string{"upload": field(t, p.body, uploadRe),
		"rev": field(t, p.body, revRe), "replace": "1"}, nil, "X-CSRF-Token", v.Get("csrf"))
	if ap.status != 303 {
		t.Fatalf("multipart apply: %d\n%s", ap.status, ap.body)
	}
}
