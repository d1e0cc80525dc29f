package runtime

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Append-style JSON for the login answer. encoding/json's reflection and
// its re-scan of every Claims.MarshalJSON cost a login about half an ES256
// signature; these append the same bytes straight into the caller's
// (pooled) buffer. The output is byte for byte what encoding/json.Marshal
// gives (HTML-safe escaping, sorted map keys, json.Number checked);
// FuzzAppendJSONAgrees holds them to it. Values of kinds not written here
// go through json.Marshal.

// errAppendDepth stops the append encoder on nesting deeper than any
// answer has (a cycle, say): the caller then encodes with encoding/json,
// which reports such values properly.
var errAppendDepth = errors.New("json: nesting too deep for the append encoder")

const maxAppendDepth = 64

// htmlSafe marks the ASCII bytes encoding/json writes as they are.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as encoding/json writes a string.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSON appends v as encoding/json.Marshal encodes it.
func AppendJSON(b []byte, v any) ([]byte, error) {
	return appendJSON(b, v, 0)
}

func appendJSON(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxAppendDepth {
		return nil, errAppendDepth
	}
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return AppendJSONString(b, t), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case int:
		return strconv.AppendInt(b, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(b, t, 10), nil
	case json.Number:
		s := string(t)
		if s == "" {
			s = "0" // encoding/json's zero Number
		}
		if !ValidJSONNumber(s) {
			break // encoding/json refuses it
		}
		return append(b, s...), nil
	case []string:
		if t == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, s)
		}
		return append(b, ']'), nil
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
			if b, err = appendJSON(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if t == nil {
			return append(b, "null"...), nil
		}
		var stack [16]string
		keys := stack[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(AppendJSONString(b, k), ':')
			var err error
			if b, err = appendJSON(b, t[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case map[string]string:
		if t == nil {
			return append(b, "null"...), nil
		}
		var stack [16]string
		keys := stack[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(AppendJSONString(b, k), ':')
			b = AppendJSONString(b, t[k])
		}
		return append(b, '}'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// AppendJSON appends the claims as encoding/json encodes them (through
// MarshalJSON): one object in their order, {} when there are none.
func (c Claims) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, cl := range c {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(AppendJSONString(b, cl.Name), ':')
		var err error
		if b, err = AppendJSON(b, cl.Value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// AppendJSON appends the decision as encoding/json encodes it.
func (d Decision) AppendJSON(b []byte) []byte {
	b = append(b, `{"allowed":`...)
	b = strconv.AppendBool(b, d.Allowed)
	if d.Reason != "" {
		b = AppendJSONString(append(b, `,"reason":`...), d.Reason)
	}
	if d.Code != "" {
		b = AppendJSONString(append(b, `,"code":`...), d.Code)
	}
	if d.Rule != "" {
		b = AppendJSONString(append(b, `,"rule":`...), d.Rule)
	}
	return append(b, '}')
}

// AppendJSON appends the authorization as encoding/json encodes it (a nil
// list is null).
func (a *Authorization) AppendJSON(b []byte) []byte {
	if a == nil {
		return append(b, "null"...)
	}
	b, _ = AppendJSON(append(b, `{"groups":`...), a.Groups)
	b, _ = AppendJSON(append(b, `,"roles":`...), a.Roles)
	b, _ = AppendJSON(append(b, `,"permissions":`...), a.Permissions)
	return append(b, '}')
}
