package dashboard

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/runtime"
)

// FuzzDecoders runs every form and query decoder of the dashboard on
// arbitrary input: none panics, each either refuses with a validation
// error (the message a form shows) or returns values that hold their
// promises.
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{"auth0|alice\nauth0|bob, auth0|alice", "", " , ;", "a\xffb", "required_roles=editor,admin\nplan = gold",
		"=x", "k=v\nk=w", "12", "-1", "2026-12-04T15:30", "2026-12-04T15:30:00Z", strings.Repeat("x", 1100)} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		invalid := func(err error) {
			t.Helper()
			var ve *runtime.ValidationError
			if !errors.As(err, &ve) || ve.Reason == "" {
				t.Fatalf("error %v (%T) is not a validation error with a reason", err, err)
			}
		}
		if ids, err := ParseIDList("group", "members", a); err != nil {
			invalid(err)
		} else {
			seen := map[string]bool{}
			for _, id := range ids {
				if id == "" || len(id) > runtime.MaxIDLength || !utf8.ValidString(id) || seen[id] || strings.ContainsAny(id, ", ;\n") {
					t.Fatalf("ParseIDList(%q) returned the id %q", a, id)
				}
				seen[id] = true
			}
		}
		if m, err := ParseMetadata(a); err != nil {
			invalid(err)
		} else {
			for k := range m {
				if k == "" || strings.TrimSpace(k) != k {
					t.Fatalf("ParseMetadata(%q) returned the key %q", a, k)
				}
			}
		}
		v := url.Values{"rev": {a}, "q": {b}, "page": {a}, "per_page": {b}, "name": {a}, "actor": {b}, "from": {a}, "to": {b}}
		if m, err := ParseRevision(v); err != nil {
			invalid(err)
		} else if !m.Set {
			t.Fatal("ParseRevision accepted without setting the revision")
		}
		if lq, err := ParseListQuery(v, 50); err != nil {
			invalid(err)
		} else if lq.Page < 0 || lq.PerPage < 1 || lq.PerPage > 1000 {
			t.Fatalf("ParseListQuery returned %+v", lq)
		}
		if s, err := FormText(v, "group", "name", 4096, true); err != nil {
			invalid(err)
		} else if s == "" || !utf8.ValidString(s) || len(s) > 4096 {
			t.Fatalf("FormText returned %q", s)
		}
		if af, err := ParseAuditFilter(v); err != nil {
			invalid(err)
		} else if !af.From.IsZero() && !af.To.IsZero() && af.To.Before(af.From) {
			t.Fatalf("ParseAuditFilter returned to before from: %+v", af)
		}
	})
}
