package token

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/runtime"
)

// The token payload is written straight into one byte slice: fixed claims
// first, then the pipeline's custom claims. Going through a map (as the
// go-jose jwt builder does) would cost more than signing with ES256 or EdDSA.

// plainJSON marks the bytes a JSON string holds as they are.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainJSON[s[i]] {
			q, _ := json.Marshal(s) // rare: escapes and non-ASCII
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendKey(b []byte, k string) []byte {
	b = append(b, ',')
	b = appendString(b, k)
	return append(b, ':')
}

func appendStringClaim(b []byte, k, v string) []byte {
	return appendString(appendKey(b, k), v)
}

func appendTimeClaim(b []byte, k string, t time.Time) []byte {
	return strconv.AppendInt(appendKey(b, k), t.Unix(), 10)
}

// appendValue appends a JSON encoding of a claim value, with fast paths for
// the shapes rules produce (strings, string lists, numbers, booleans).
func appendValue(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case string:
		return appendString(b, t), nil
	case []string:
		if t == nil {
			return append(b, "null"...), nil // as encoding/json, the answer and the size check have it
		}
		b = append(b, '[')
		for i, s := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case int:
		return strconv.AppendInt(b, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(b, t, 10), nil
	case json.Number:
		// The pipeline's check (runtime.ValidJSONNumber) decides what a
		// rule may give; ParseFloat would also take "Inf" or "0x1p3".
		if !runtime.ValidJSONNumber(string(t)) {
			return nil, fmt.Errorf("invalid number literal %q", string(t))
		}
		return append(b, t...), nil
	case nil:
		return append(b, "null"...), nil
	case []any:
		if t == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append(b, j...), nil
	}
}

// appendCustom appends the custom claims, refusing any reserved name
// (runtime.ReservedClaim, the list the pipeline refuses too): a custom
// claim must never override what claimsmith sets (or must set) itself.
func appendCustom(b []byte, claims runtime.Claims, token string) ([]byte, error) {
	for _, c := range claims {
		if c.Name == "" || runtime.ReservedClaim(c.Name) {
			return nil, &runtime.ValidationError{Entity: token + " claim", ID: c.Name, Reason: "is reserved and cannot be set by a rule"}
		}
		b = appendKey(b, c.Name)
		var err error
		if b, err = appendValue(b, c.Value); err != nil {
			return nil, &runtime.ValidationError{Entity: token + " claim", ID: c.Name, Reason: err.Error()}
		}
	}
	return b, nil
}
