package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkIntrospectHandler is one RFC 7662 request through the mux (body
// limit, HTTP Basic, form decoding, verification, revocation check, answer)
// without the network; compare with runtime/token's BenchmarkVerify/ES256.
func BenchmarkIntrospectHandler(b *testing.B) {
	e := newOAuthEnv(b)
	body := url.Values{"token": {e.mint(b, "https://api.example.com")}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rs", "rs-secret")
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.HasPrefix(rec.Body.String(), `{"active":true`) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
