package admin

import (
	"strings"
	"testing"
)

// FuzzContainsFold: the allocation-free search agrees with
// strings.Contains on lower-cased strings.
func FuzzContainsFold(f *testing.F) {
	f.Add("Bench Group 5", "group 5")
	f.Add("ÉCOLE", "éco")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, hay, needle string) {
		n := strings.ToLower(needle)
		if got, want := containsFold(hay, n), strings.Contains(strings.ToLower(hay), n); got != want {
			t.Fatalf("containsFold(%q, %q) = %v, want %v", hay, n, got, want)
		}
	})
}
