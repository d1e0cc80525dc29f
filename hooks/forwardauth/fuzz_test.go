package forwardauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/hooks/forwardauth"
)

// FuzzParseURI: the gateway's original URI never panics the parser; an
// accepted one yields an absolute path.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"/a?b=c", "/public/%2e%2e/admin", "http://h/x", "//evil", "x", "/%zz", "/a#frag", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		p, _, err := forwardauth.ParseURI(uri)
		if err == nil && !strings.HasPrefix(p, "/") {
			t.Fatalf("%q gave path %q", uri, p)
		}
	})
}

// FuzzGatewayHeaders: any combination of the gateway's headers gives an
// input or an error, never a panic; identity values always split back.
func FuzzGatewayHeaders(f *testing.F) {
	f.Add("GET", "/admin/x", "app.example.com", "https", "Bearer a.b.c", "a,b")
	f.Add("", "", "", "", "", "")
	f.Add("get", "/x?y", "h", "HTTP", "bearer x", "\r\n")
	h, err := forwardauth.New(config("1s"), newClaimsmith(f).deps())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, uri, host, proto, authz, value string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/hooks/forward-auth"}, Header: http.Header{}}
		for k, v := range map[string]string{"X-Forwarded-Method": method, "X-Original-URI": uri, "X-Forwarded-Host": host,
			"X-Forwarded-Proto": proto, "Authorization": authz} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		in, err := h.Input(r)
		if err == nil && (!strings.HasPrefix(in.Path, "/") || in.Method == "") {
			t.Fatalf("input %+v", in)
		}
		items := strings.Split(forwardauth.JoinEscaped([]string{value, "x"}), ",")
		if len(items) != 2 {
			t.Fatalf("value %q split into %d items", value, len(items))
		}
		if got, err := url.PathUnescape(items[0]); err != nil || got != value {
			t.Fatalf("value %q came back as %q (%v)", value, got, err)
		}
		if strings.ContainsAny(items[0], "\r\n\x00 ") {
			t.Fatalf("escaped value %q carries a control character", items[0])
		}
	})
}
