package runtime

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzPatchEventIsMergePatch: the run's copy-on-write merge gives what
// MergePatch gives on a deep copy, and changes no map of its input (the
// JSON of dst before and after is the same).
func FuzzPatchEventIsMergePatch(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1,"authorization":{"clients":{"x":{"roles":["r"]},"y":{"roles":["s"]}}}}`, `{"authorization":{"clients":{"x":{"roles":["t"],"groups":null}}}}`},
		{`{}`, `{"a":{}}`},
		{`{"a":{"b":1}}`, `{"a":{}}`},
		{`{"a":[1,{"b":2}]}`, `{"a":null,"c":[{"d":{}}]}`},
		{`{"a":"x"}`, `{"a":{"b":null,"c":{"d":1}}}`},
		{`null`, `{"a":1}`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, dstJSON, patchJSON string) {
		var dst, patch, dst2 map[string]any
		if json.Unmarshal([]byte(dstJSON), &dst) != nil || json.Unmarshal([]byte(patchJSON), &patch) != nil {
			return
		}
		_ = json.Unmarshal([]byte(dstJSON), &dst2)
		before, _ := json.Marshal(dst)
		got := patchEvent(dst, patch)
		want := MergePatch(CloneMap(dst2), patch)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("patchEvent %#v, MergePatch %#v", got, want)
		}
		if after, _ := json.Marshal(dst); !bytes.Equal(before, after) {
			t.Fatalf("dst changed in place: %s → %s", before, after)
		}
		// The result shares nothing with the patch.
		if len(got) > 0 && len(patch) > 0 {
			patched, _ := json.Marshal(got)
			for k := range patch {
				delete(patch, k)
			}
			if again, _ := json.Marshal(got); !bytes.Equal(patched, again) {
				t.Fatalf("result changed with the patch: %s → %s", patched, again)
			}
		}
	})
}
