package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

// FuzzUserQueryAndSample: the user view's query and the try-a-login sample
// name either decode or are refused with a validation error, never panic.
func FuzzUserQueryAndSample(f *testing.F) {
	f.Add("user=auth0%7Calice&client=portal-client&groups=a,b", "employee.json")
	f.Add("user=x", "../../etc/passwd")
	f.Add("user=%ff&client=%00", "")
	f.Fuzz(func(t *testing.T, rawQuery, sample string) {
		r := &http.Request{URL: &url.URL{RawQuery: rawQuery}}
		q, err := ParseUserQuery(r)
		if err != nil && !errors.Is(err, runtime.ErrInvalid) {
			t.Fatalf("query %q: %v is not a validation error", rawQuery, err)
		}
		if err == nil && q.User != "" && q.Client == "" {
			t.Fatalf("query %q: a user without a client passed", rawQuery)
		}
		name, err := ParseSample(sample)
		if err != nil && !errors.Is(err, runtime.ErrInvalid) {
			t.Fatalf("sample %q: %v", sample, err)
		}
		if err == nil && readSample(name) == "{}" {
			t.Fatalf("sample %q accepted but unreadable", sample)
		}
	})
}
