package wasm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/runtime"
)

// Decoding a guest's output is on every call's path. The obvious strict
// decoder (json.Decoder with DisallowUnknownFields, and runtime.Claims'
// token-by-token UnmarshalJSON) cost about a quarter of a small rule's call,
// so decodeCommands does the same job in two cheaper passes: json.Unmarshal
// into a wire struct checks syntax and types, then a key scan over the
// (now known valid) JSON refuses unknown keys and reads the claims in order.
// FuzzDecodeCommands checks it against the obvious decoder.

type wireToken struct {
	Claims       json.RawMessage `json:"claims"`
	AddScopes    []string        `json:"add_scopes"`
	RemoveScopes []string        `json:"remove_scopes"`
}

type wireCommands struct {
	IDToken      wireToken         `json:"id_token"`
	AccessToken  wireToken         `json:"access_token"`
	AppMetadata  map[string]any    `json:"app_metadata"`
	UserMetadata map[string]any    `json:"user_metadata"`
	Access       runtime.Access    `json:"access"`
	Log          []runtime.LogLine `json:"log"`
}

// Known keys per object, as encoding/json matches them (case-insensitively).
var (
	commandKeys = []string{"id_token", "access_token", "app_metadata", "user_metadata", "access", "log"}
	tokenKeys   = []string{"claims", "add_scopes", "remove_scopes"}
	accessKeys  = []string{"vote", "reason", "code"}
	logKeys     = []string{"level", "msg"}
)

// decodeCommands strictly decodes a guest's output: an unknown key is an
// error naming it, so a typo (id_tokens) is not silently ignored. Empty
// output means no commands.
func decodeCommands(b []byte, out *runtime.Commands) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	var w wireCommands
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: not valid commands JSON: %v", runtime.ErrInvalid, err)
	}
	if b[0] == 'n' { // null: no commands
		return nil
	}
	if err := checkKeys(b); err != nil {
		return fmt.Errorf("%w: not valid commands JSON: %v", runtime.ErrInvalid, err)
	}
	if err := checkDuplicateKeys(b); err != nil {
		return fmt.Errorf("%w: not valid commands JSON: %v", runtime.ErrInvalid, err)
	}
	var err error
	if out.IDToken.Claims, err = decodeClaims(w.IDToken.Claims, out.IDToken.Claims[:0]); err != nil {
		return fmt.Errorf("%w: id_token claims: %v", runtime.ErrInvalid, err)
	}
	if out.AccessToken.Claims, err = decodeClaims(w.AccessToken.Claims, out.AccessToken.Claims[:0]); err != nil {
		return fmt.Errorf("%w: access_token claims: %v", runtime.ErrInvalid, err)
	}
	out.IDToken.AddScopes, out.IDToken.RemoveScopes = w.IDToken.AddScopes, w.IDToken.RemoveScopes
	out.AccessToken.AddScopes, out.AccessToken.RemoveScopes = w.AccessToken.AddScopes, w.AccessToken.RemoveScopes
	out.AppMetadata, out.UserMetadata = w.AppMetadata, w.UserMetadata
	out.Access, out.Log = w.Access, w.Log
	return nil
}

// checkKeys refuses unknown keys in the objects of the commands' shape. b is
// valid JSON (json.Unmarshal accepted it).
//
// encoding/json matches these keys case-insensitively and lets the last
// of two matching ones win, so "access" and "Access" in one object are a
// duplicate as well (checkDuplicateKeys sees only exact ones).
func checkKeys(b []byte) error {
	var seen uint
	return eachMember(b, func(key string, v []byte) error {
		k := known(key, commandKeys)
		if k == "" {
			return fmt.Errorf("json: unknown field %q", key)
		}
		if err := once(&seen, k, key, commandKeys); err != nil {
			return err
		}
		switch k {
		case "id_token", "access_token":
			if v[0] == '{' {
				return knownMembers(v, tokenKeys)
			}
		case "access":
			if v[0] == '{' {
				return knownMembers(v, accessKeys)
			}
		case "log":
			if v[0] == '[' {
				return eachElement(v, func(e []byte) error {
					if e[0] != '{' {
						return nil
					}
					return knownMembers(e, logKeys)
				})
			}
		}
		return nil
	})
}

// knownMembers refuses unknown and repeated keys in the object v.
func knownMembers(v []byte, keys []string) error {
	var seen uint
	return eachMember(v, func(key string, _ []byte) error {
		k := known(key, keys)
		if k == "" {
			return fmt.Errorf("json: unknown field %q", key)
		}
		return once(&seen, k, key, keys)
	})
}

// once refuses the known key k (of keys) a second time in one object;
// seen has a bit per key.
func once(seen *uint, k, key string, keys []string) error {
	for i, kk := range keys {
		if kk == k {
			if *seen&(1<<i) != 0 {
				return fmt.Errorf("json: duplicate key %q", key)
			}
			*seen |= 1 << i
		}
	}
	return nil
}

func known(key string, keys []string) string {
	for _, k := range keys {
		if k == key || strings.EqualFold(k, key) {
			return k
		}
	}
	return ""
}

// decodeClaims reads a claims object in its key order into dst, as
// runtime.Claims.UnmarshalJSON does (numbers stay json.Number).
func decodeClaims(raw json.RawMessage, dst runtime.Claims) (runtime.Claims, error) {
	if len(raw) == 0 {
		return dst, nil
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case '{':
	default:
		return nil, fmt.Errorf("claims must be a JSON object")
	}
	err := eachMember(raw, func(name string, v []byte) error {
		val, err := decodeValue(v)
		if err != nil {
			return fmt.Errorf("claim %q: %v", name, err)
		}
		dst.Set(name, val)
		return nil
	})
	return dst, err
}

// decodeValue decodes one valid JSON value with numbers as json.Number.
func decodeValue(v []byte) (any, error) {
	switch c := v[0]; {
	case c == '"':
		if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
			return string(v[1 : len(v)-1]), nil
		}
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case c == 't':
		return true, nil
	case c == 'f':
		return false, nil
	case c == 'n':
		return nil, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return json.Number(v), nil
	}
	var x any
	if !hasNumber(v) {
		err := json.Unmarshal(v, &x)
		return x, err
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	err := dec.Decode(&x)
	return x, err
}

// hasNumber reports whether a valid JSON value contains a number outside
// its strings.
func hasNumber(v []byte) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			i = skipString(v, i) - 1
		case c == '-' || (c >= '0' && c <= '9'):
			return true
		}
	}
	return false
}

// eachMember calls f for every member of the valid JSON object obj, with the
// decoded key and the raw value.
func eachMember(obj []byte, f func(key string, v []byte) error) error {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] != '}' {
		kEnd := skipString(obj, i)
		key := obj[i:kEnd]
		var name string
		if bytes.IndexByte(key, '\\') < 0 && utf8.Valid(key) {
			name = string(key[1 : len(key)-1])
		} else if err := json.Unmarshal(key, &name); err != nil {
			return err
		}
		i = skipSpace(obj, kEnd)
		i = skipSpace(obj, i+1) // ':'
		vEnd := skipValue(obj, i)
		if err := f(name, obj[i:vEnd]); err != nil {
			return err
		}
		i = skipSpace(obj, vEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}

// eachElement calls f for every element of the valid JSON array arr.
func eachElement(arr []byte, f func(v []byte) error) error {
	i := skipSpace(arr, 1)
	for i < len(arr) && arr[i] != ']' {
		end := skipValue(arr, i)
		if err := f(arr[i:end]); err != nil {
			return err
		}
		i = skipSpace(arr, end)
		if i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			return i
		}
		i++
	}
	return i
}

// keySpan is an object key in the output: the raw string, quotes included;
// plain when it has no escapes and is valid UTF-8 (then equal keys are
// equal bytes).
type keySpan struct {
	raw   []byte
	plain bool
}

// frame is an open object or array of checkDuplicateKeys' walk: an object's
// keys so far are keys[base:], or seen once there are many.
type frame struct {
	object bool
	base   int
	seen   map[string]struct{}
}

// manyKeys is the object size from which keys are compared through a map
// rather than one by one.
const manyKeys = 16

// checkDuplicateKeys refuses an object, at any depth, with a key twice:
// encoding/json would keep one of the two values silently, and another
// reader of the same output might keep the other. b is valid JSON. One
// pass; keys compared one by one in small objects, through a map in large
// ones.
func checkDuplicateKeys(b []byte) error {
	var framesBuf [16]frame
	var keysBuf [32]keySpan
	frames, keys := framesBuf[:0], keysBuf[:0]
	expectKey := false
	for i := 0; i < len(b); {
		switch b[i] {
		case '{':
			frames = append(frames, frame{object: true, base: len(keys)})
			expectKey = true
			i++
		case '[':
			frames = append(frames, frame{base: len(keys)})
			expectKey = false
			i++
		case '}', ']':
			keys = keys[:frames[len(frames)-1].base]
			frames = frames[:len(frames)-1]
			expectKey = false
			i++
		case ',':
			expectKey = len(frames) > 0 && frames[len(frames)-1].object
			i++
		case '"':
			end := skipString(b, i)
			if expectKey {
				f := &frames[len(frames)-1]
				k := keySpan{raw: b[i:end], plain: bytes.IndexByte(b[i:end], '\\') < 0 && utf8.Valid(b[i:end])}
				name := ""
				if f.seen != nil || !k.plain {
					var err error
					if name, err = k.name(); err != nil {
						return err
					}
				}
				dup := false
				if f.seen != nil {
					_, dup = f.seen[name]
					f.seen[name] = struct{}{}
				} else {
					var err error
					if dup, err = seenKey(keys[f.base:], k); err != nil {
						return err
					}
					if !dup {
						keys = append(keys, k)
						if len(keys)-f.base > manyKeys {
							if f.seen, err = keyMap(keys[f.base:]); err != nil {
								return err
							}
							keys = keys[:f.base]
						}
					}
				}
				if dup {
					return fmt.Errorf("json: duplicate key %s", k.raw)
				}
				expectKey = false
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// seenKey reports whether k is one of prev.
func seenKey(prev []keySpan, k keySpan) (bool, error) {
	for _, p := range prev {
		if p.plain && k.plain {
			if bytes.Equal(p.raw, k.raw) {
				return true, nil
			}
			continue
		}
		a, err := p.name()
		if err != nil {
			return false, err
		}
		b, err := k.name()
		if err != nil {
			return false, err
		}
		if a == b {
			return true, nil
		}
	}
	return false, nil
}

// keyMap is the set of keys, for a large object.
func keyMap(keys []keySpan) (map[string]struct{}, error) {
	m := make(map[string]struct{}, 4*len(keys))
	for _, k := range keys {
		name, err := k.name()
		if err != nil {
			return nil, err
		}
		m[name] = struct{}{}
	}
	return m, nil
}

// name is the decoded key.
func (k keySpan) name() (string, error) {
	if k.plain {
		return string(k.raw[1 : len(k.raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(k.raw, &s)
	return s, err
}
