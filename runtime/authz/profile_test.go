package authz

import (
	"encoding/json"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

func canonical(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPatchIsNoop(t *testing.T) {
	cur := `{"authorization":{"groups":["A","B"],"roles":[]},"n":1,"o":{"k":[true,{"x":1.5}]},"s":"v"}`
	for _, c := range []struct {
		patch string
		noop  bool
	}{
		{`{}`, true},
		{`{"n":1}`, true},
		{`{"authorization":{"groups":["A","B"]}}`, true},
		{`{"authorization":{}}`, true},
		{`{"o":{"k":[true,{"x":1.5}]}}`, true},
		{`{"gone":null}`, true},
		{`{"n":2}`, false},
		{`{"n":"1"}`, false},
		{`{"authorization":{"groups":["B","A"]}}`, false},
		{`{"authorization":{"permissions":[]}}`, false},
		{`{"s":null}`, false},
		{`{"new":{}}`, false},
		{`{"s":{"x":1}}`, false},
		{`{"o":{"k":[true]}}`, false},
	} {
		p := runtime.Profile{UserID: "u", AppMetadata: canonical(t, cur), UserMetadata: map[string]any{}}
		patch := canonical(t, c.patch)
		if got := PatchIsNoop(p, patch, nil); got != c.noop {
			t.Errorf("%s: PatchIsNoop = %v, want %v", c.patch, got, c.noop)
		}
	}
	// Go-typed patches as rules build them.
	p := runtime.Profile{UserID: "u", AppMetadata: canonical(t, cur)}
	if !PatchIsNoop(p, map[string]any{"n": 1, "authorization": map[string]any{"groups": []string{"A", "B"}, "roles": []string{}}}, nil) {
		t.Error("[]string and int patches equal to the stored JSON must be no-ops")
	}
	if PatchIsNoop(p, map[string]any{"n": struct{}{}}, nil) {
		t.Error("unknown types must not be called no-ops")
	}
}

// FuzzPatchIsNoop checks the one direction that matters: whenever
// PatchIsNoop says true, the real merge encodes exactly like the stored
// profile.
func FuzzPatchIsNoop(f *testing.F) {
	f.Add(`{"a":{"b":[1,"x"]},"n":1}`, `{"a":{"b":[1,"x"]}}`)
	f.Add(`{"a":1}`, `{"a":null}`)
	f.Add(`{}`, `{"a":{}}`)
	f.Fuzz(func(t *testing.T, cur, patch string) {
		var c, p map[string]any
		if json.Unmarshal([]byte(cur), &c) != nil || json.Unmarshal([]byte(patch), &p) != nil || c == nil {
			return
		}
		prof := runtime.Profile{UserID: "u", AppMetadata: c, UserMetadata: map[string]any{}}
		if !PatchIsNoop(prof, p, nil) {
			return
		}
		next, err := MergeProfile(prof, "u", p, nil, 1<<20)
		if err != nil {
			return
		}
		a, _ := json.Marshal(prof.AppMetadata)
		b, _ := json.Marshal(next.AppMetadata)
		if string(a) != string(b) {
			t.Fatalf("PatchIsNoop said no-op, merge changed %s into %s", a, b)
		}
	})
}
