package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
)

// fuzzTargets are the create/update endpoints whose JSON bodies the fuzz
// test throws at the API.
var fuzzTargets = []struct{ method, path string }{
	{"POST", "/api/groups"},
	{"PUT", "/api/groups/g-fuzz"},
	{"PATCH", "/api/groups/g-fuzz/members"},
	{"DELETE", "/api/groups/g-fuzz/members"},
	{"PATCH", "/api/groups/g-fuzz/nested"},
	{"PATCH", "/api/groups/g-fuzz/roles"},
	{"PATCH", "/api/groups/g-fuzz/mappings"},
	{"POST", "/api/roles"},
	{"PUT", "/api/roles/r-fuzz"},
	{"PATCH", "/api/roles/r-fuzz/users"},
	{"PATCH", "/api/roles/r-fuzz/permissions"},
	{"POST", "/api/permissions"},
	{"PUT", "/api/permissions/p-fuzz"},
	{"POST", "/api/applications"},
	{"PUT", "/api/applications/app-fuzz"},
	{"PATCH", "/api/users/u-fuzz/groups"},
	{"DELETE", "/api/users/u-fuzz/groups"},
	{"PATCH", "/api/users/u-fuzz/roles"},
	{"POST", "/api/import"},
	{"POST", "/api/clients"},
}

// FuzzAdminBodies: whatever the body, a create/update endpoint answers a
// JSON 2xx or 4xx (never a 5xx, never a panic), a 4xx changes nothing, and
// a 2xx is audited.
func FuzzAdminBodies(f *testing.F) {
	seeds := []string{
		`{"name":"Fuzz"}`, `{"_id":"x","name":"n","description":"d"}`, `{"name":""}`, `{"name":42}`,
		`["u1","u2"]`, `[]`, `null`, `[""]`, `[{"groupName":"a","connectionName":"b"}]`,
		`{"name":"r","applicationType":"client","applicationId":"app","permissions":["p-fuzz"]}`,
		`{"name":"p","applicationType":"resource_server","applicationId":"https://api/"}`,
		`{"client_id":"c","name":"n","metadata":{"required_roles":"a,b"}}`,
		`{"groups":[{"_id":"g","name":"G","nested":["g"]}],"roles":[],"permissions":[]}`,
		`{"configuration":[{"_id":"v1"}],"groups":[],"roles":[],"permissions":[]}`,
		`{"client_id":"svc","grant_types":["client_credentials"],"audiences":["https://api"],"scopes":["read"]}`,
		`{"client_id":"k","token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}}`,
		`{"name":"\u0000\ud800"}`, `{"name":"a"} trailing`, `{"a":`, `"str"`, `1e999`, `{"name":"x","name":"y"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	fx := newAdminFixture(f)
	ctx := context.Background()
	seed := func(method, path, body string) {
		req := httptest.NewRequest(method, path, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fx.all)
		rec := httptest.NewRecorder()
		fx.api.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			f.Fatalf("seed %s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
	seed("POST", "/api/groups", `{"_id":"g-fuzz","name":"G fuzz"}`)
	seed("POST", "/api/permissions", `{"_id":"p-fuzz","name":"p","applicationType":"client","applicationId":"app"}`)
	seed("POST", "/api/roles", `{"_id":"r-fuzz","name":"r","applicationType":"client","applicationId":"app"}`)
	seed("POST", "/api/applications", `{"client_id":"app-fuzz"}`)

	f.Fuzz(func(t *testing.T, target uint8, body []byte) {
		tg := fuzzTargets[int(target)%len(fuzzTargets)]
		before, err := fx.store.Revision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		audits := fx.auditTotal(t)
		req := httptest.NewRequest(tg.method, tg.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fx.all)
		rec := httptest.NewRecorder()
		fx.api.ServeHTTP(rec, req)
		after, _ := fx.store.Revision(ctx)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%s %s %q: %d %s", tg.method, tg.path, body, rec.Code, rec.Body)
		case rec.Code >= 400:
			var e hooks.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Description == "" {
				t.Fatalf("%s %s %q: %d without a JSON error: %s", tg.method, tg.path, body, rec.Code, rec.Body)
			}
			if after != before {
				t.Fatalf("%s %s %q: %d but the store changed", tg.method, tg.path, body, rec.Code)
			}
		case rec.Code >= 200 && rec.Code < 300:
			if fx.auditTotal(t) != audits+1 || after != before+1 {
				t.Fatalf("%s %s %q: %d, revision %d→%d, %d audit records", tg.method, tg.path, body, rec.Code, before, after, fx.auditTotal(t)-audits)
			}
		default:
			t.Fatalf("%s %s %q: unexpected status %d", tg.method, tg.path, body, rec.Code)
		}
		if rec.Code != http.StatusNoContent && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: answer is not JSON: %s", tg.method, tg.path, rec.Body)
		}
	})
}

// FuzzAdminQueryAndHeaders: paging/filter query strings and the ETag
// headers are outside input too. Whatever they hold, a list answers 200,
// 304 or a 400 naming the parameter, and a write with any If-Match answers
// 2xx, 400 or 409 without a 5xx.
func FuzzAdminQueryAndHeaders(f *testing.F) {
	for _, s := range []struct{ q, etag string }{
		{"page=0&per_page=10", `"1"`}, {"page=-1", `W/"2"`}, {"per_page=1001", "*"}, {"q=%ZZ&field=x", `"`},
		{"name=G&q=g&field=description", `"18446744073709551616"`}, {"page=99999999999999999999", `"1", "2"`}, {"&&==;", "\x00"},
	} {
		f.Add(s.q, s.etag)
	}
	fx := newAdminFixture(f)
	seed := httptest.NewRequest("POST", "/api/groups", bytes.NewReader([]byte(`{"_id":"g","name":"G"}`)))
	seed.Header.Set("Content-Type", "application/json")
	seed.Header.Set("Authorization", "Bearer "+fx.all)
	fx.api.ServeHTTP(httptest.NewRecorder(), seed)
	f.Fuzz(func(t *testing.T, query, etag string) {
		for _, path := range []string{"/api/groups", "/api/groups/g/members", "/api/audit", "/api/roles"} {
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path, req.URL.RawQuery = path, query
			req.Header.Set("Authorization", "Bearer "+fx.read)
			req.Header.Set("If-None-Match", etag)
			rec := httptest.NewRecorder()
			fx.api.ServeHTTP(rec, req)
			if rec.Code != 200 && rec.Code != 304 && rec.Code != 400 {
				t.Fatalf("GET %s?%s (If-None-Match %q): %d %s", path, query, etag, rec.Code, rec.Body)
			}
		}
		req := httptest.NewRequest("PATCH", "/api/groups/g/members", bytes.NewReader([]byte(`["u"]`)))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fx.all)
		req.Header.Set("If-Match", etag)
		rec := httptest.NewRecorder()
		fx.api.ServeHTTP(rec, req)
		if rec.Code != 204 && rec.Code != 400 && rec.Code != 409 {
			t.Fatalf("PATCH with If-Match %q: %d %s", etag, rec.Code, rec.Body)
		}
	})
}
