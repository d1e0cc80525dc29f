package runtime

import (
	"encoding/json"
	"math"
	"testing"
)

func TestJSONSizeMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, false, "", "plain", "quote\" back\\ nl\n tab\t <b>&amp; \u2028 \x01 \b\f", "caf\xe9 bad utf8", "日本語",
		0.0, 1.5, -2.25e-7, 1e21, 123456789.0, float32(0.1), 42, int64(-7), uint64(1 << 63), json.Number("12.50"),
		[]string{"a", "b"}, []string(nil), []any{1.0, "x", nil, []any{}}, map[string]any{"a": map[string]any{"b": []any{true}}},
		map[string]string{"k": "v<"}, map[string]any(nil), struct {
			A int `json:"a"`
		}{1},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jsonSize(v)
		if err != nil || got != len(want) {
			t.Errorf("jsonSize(%#v) = %d, %v; encoding/json gives %d (%s)", v, got, err, len(want), want)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), func() {}, map[string]any{"c": make(chan int)}} {
		if _, err := jsonSize(bad); err == nil {
			t.Errorf("jsonSize(%T) accepted", bad)
		}
	}
}

// FuzzJSONSize checks the budget arithmetic against encoding/json on
// arbitrary JSON values and strings.
func FuzzJSONSize(f *testing.F) {
	f.Add([]byte(`{"a":[1,"<x>",null,{"b":1e-7}]}`), "s\u2028\x00")
	f.Add([]byte(`123456789012345678901234567890`), "\xff\xfe")
	f.Fuzz(func(t *testing.T, data []byte, s string) {
		for _, v := range []any{s, []string{s, s}} {
			want, _ := json.Marshal(v)
			if got, err := jsonSize(v); err != nil || got != len(want) {
				t.Fatalf("jsonSize(%q) = %d, %v; want %d", s, got, err, len(want))
			}
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		want, err := json.Marshal(v)
		if err != nil {
			return
		}
		if got, err := jsonSize(v); err != nil || got != len(want) {
			t.Fatalf("jsonSize(%s) = %d, %v; want %d", data, got, err, len(want))
		}
	})
}
