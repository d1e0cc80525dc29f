package guard

import (
	"encoding/json"
	"path"
	"strings"
	"testing"
)

// FuzzPattern: compiling never panics; matching never panics; a literal
// pattern matches exactly its cleaned self; "/**" matches every path; a
// match never depends on ".." left in the path (paths are cleaned first).
func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{{"/admin/**", "/admin/x/y"}, {"/api/*/items", "/api/v1/items"}, {"/s/*.css", "/s/a.css"},
		{"/**/x", "/a/b/x"}, {"/a/**/b/**/c", "/a/b/c"}, {"/[a-", "/a"}, {"/a**", "/ab"}, {"/", "/"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, p string) {
		cp := cleanPath(p)
		if !strings.HasPrefix(cp, "/") || (len(cp) > 1 && strings.HasSuffix(cp, "/")) || strings.Contains(cp, "/../") || strings.HasSuffix(cp, "/..") {
			t.Fatalf("cleanPath(%q) = %q", p, cp)
		}
		if cp != path.Clean("/"+p) && cp != path.Clean(p) {
			t.Fatalf("cleanPath(%q) = %q, path.Clean says %q", p, cp, path.Clean(p))
		}
		all, _ := compilePattern("/**")
		if !all.match(cp) {
			t.Fatalf("/** does not match %q", cp)
		}
		pt, err := compilePattern(pat)
		if err != nil {
			return
		}
		got := pt.match(cp)
		if !strings.ContainsAny(pat, `*?[\`) && strings.HasPrefix(pat, "/") {
			want := cleanPath(pat) == cp
			if got != want {
				t.Fatalf("literal %q on %q: %v, want %v", pat, cp, got, want)
			}
		}
	})
}

// FuzzBearerToken: the header parser never panics, accepts only RFC 6750
// b64token characters and round-trips a well-formed header.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer   x", "Basic Zm9v", "Bearer ", "Bearer a b", "BEARER a+/=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, bad := BearerToken(h)
		if tok != "" && bad {
			t.Fatal("a token and malformed")
		}
		if h == "" && (tok != "" || bad) {
			t.Fatal("an empty header is no token, not malformed")
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c <= ' ' || c >= 0x7f || strings.IndexByte(`"\,;`, c) >= 0 {
				t.Fatalf("token %q carries %q", tok, c)
			}
		}
		if tok != "" {
			if again, bad := BearerToken("Bearer " + tok); again != tok || bad {
				t.Fatalf("round trip of %q", tok)
			}
		}
	})
}

// FuzzClaimPath: extraction never panics, and a value placed at a path
// (nested objects on the dots) is found there.
func FuzzClaimPath(f *testing.F) {
	for _, s := range []string{"roles", "realm_access.roles", "https://example.com/roles", "ext.https://example.com/roles", "a..b", ".", "a.b.c.d"} {
		f.Add(s, `{"realm_access":{"roles":["a"]},"https://example.com/roles":["x"]}`)
	}
	f.Fuzz(func(t *testing.T, p, doc string) {
		var claims map[string]any
		_ = json.Unmarshal([]byte(doc), &claims)
		vals, err := Extract(claims, p)
		if err != nil {
			return
		}
		for _, v := range vals {
			if v == "" {
				t.Fatal("empty value extracted")
			}
		}
		// Build the nested document for p and find "needle" in it.
		segs := strings.Split(p, ".")
		var v any = []any{"needle"}
		for i := len(segs) - 1; i >= 0; i-- {
			v = map[string]any{segs[i]: v}
		}
		got, _ := Extract(v.(map[string]any), p)
		if len(got) != 1 || got[0] != "needle" {
			t.Fatalf("path %q in its own nested document: %v", p, got)
		}
		// And as one flat key (a namespaced URL claim).
		got, _ = Extract(map[string]any{p: "needle"}, p)
		if len(got) != 1 || got[0] != "needle" {
			t.Fatalf("path %q as one key: %v", p, got)
		}
	})
}
