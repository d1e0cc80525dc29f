package runtime

import (
	"bytes"
	"encoding/json"
	"testing"
)

// appendJSONValues are values of every kind AppendJSON writes itself, and
// some it hands to encoding/json.
func appendJSONValues(s string, n json.Number) []any {
	return []any{
		nil, s, true, false, 0, -7, int64(1) << 60, n, json.Number(""), json.Number("1e"), 1.5, float32(0.1),
		[]string{s, ""}, []string(nil), []string{}, []any{s, n, nil, []any{}}, []any(nil),
		map[string]any{s: n, "b": map[string]any{"c": []any{s}}, "a": nil}, map[string]any(nil), map[string]any{},
		map[string]string{s: s, "z": ""}, map[string]string(nil),
		Trigger(s), Claims{{Name: s, Value: n}}, []int{1}, map[string]int{s: 1},
	}
}

// FuzzAppendJSONAgrees: AppendJSON, AppendJSONString and the answer
// types' AppendJSON write exactly encoding/json's bytes, and fail where it
// fails.
func FuzzAppendJSONAgrees(f *testing.F) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\x00\x1f\b\f\n\r\t\\\"", "\u2028\u2029é€😀", "\xff\xfe", "a\xc3", "\x7f"} {
		f.Add(s, "12.5e-3")
	}
	f.Add("x", "-0")
	f.Add("x", "01")
	f.Add("x", "Inf")
	f.Fuzz(func(t *testing.T, s, num string) {
		n := json.Number(num)
		if got, want := AppendJSONString(nil, s), mustMarshal(t, s); !bytes.Equal(got, want) {
			t.Fatalf("string %q: %s, encoding/json %s", s, got, want)
		}
		vals := appendJSONValues(s, n)
		// Nested a few levels, as metadata is.
		vals = append(vals, map[string]any{"v": vals[:len(vals)-4]}, []any{map[string]any{s: []any{vals[17]}}})
		for _, v := range vals {
			got, gerr := AppendJSON([]byte("prefix"), v)
			want, werr := json.Marshal(v)
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("%#v: error %v, encoding/json %v", v, gerr, werr)
			}
			if gerr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Fatalf("%#v:\n%s\nencoding/json\n%s", v, got, want)
			}
		}
		claims := Claims{{Name: s, Value: s}, {Name: "n", Value: n}, {Name: "l", Value: []string{s}}, {Name: "m", Value: map[string]any{s: n}}}
		for _, c := range []Claims{nil, {}, claims} {
			got, gerr := c.AppendJSON(nil)
			want, werr := json.Marshal(c)
			if (gerr == nil) != (werr == nil) || (gerr == nil && !bytes.Equal(got, want)) {
				t.Fatalf("claims %#v: %s (%v), encoding/json %s (%v)", c, got, gerr, want, werr)
			}
		}
		for _, d := range []Decision{{}, {Allowed: true, Rule: s}, {Reason: s, Code: s, Rule: s}} {
			if got, want := d.AppendJSON(nil), mustMarshal(t, d); !bytes.Equal(got, want) {
				t.Fatalf("decision %#v: %s, encoding/json %s", d, got, want)
			}
		}
		for _, a := range []*Authorization{nil, {}, {Groups: []string{s}, Roles: []string{}, Permissions: []string{s, s}}} {
			if got, want := a.AppendJSON(nil), mustMarshal(t, a); !bytes.Equal(got, want) {
				t.Fatalf("authorization %#v: %s, encoding/json %s", a, got, want)
			}
		}
	})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAppendJSONCycle: a value nesting deeper than the append encoder goes
// (here a cycle) is an error, not a stack overflow; the answer is then
// encoded by encoding/json, which names the cycle.
func TestAppendJSONCycle(t *testing.T) {
	m := map[string]any{}
	m["self"] = m
	if _, err := AppendJSON(nil, m); err == nil {
		t.Fatal("a cycle was encoded")
	}
}
