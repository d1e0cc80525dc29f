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
func checkKeys(b []byte) error {
	return eachMember(b, func(key string, v []byte) error {
		switch k := known(key, commandKeys); k {
		case "":
			return fmt.Errorf("json: unknown field %q", key)
		case "id_token", "access_token":
			if v[0] == '{' {
				return eachMember(v, func(key string, _ []byte) error {
					if known(key, tokenKeys) == "" {
						return fmt.Errorf("json: unknown field %q", key)
					}
					return nil
				})
			}
		case "access":
			if v[0] == '{' {
				return eachMember(v, func(key string, _ []byte) error {
					if known(key, accessKeys) == "" {
						return fmt.Errorf("json: unknown field %q", key)
					}
					return nil
				})
			}
		case "log":
			if v[0] == '[' {
				return eachElement(v, func(e []byte) error {
					if e[0] != '{' {
						return nil
					}
					return eachMember(e, func(key string, _ []byte) error {
						if known(key, logKeys) == "" {
							return fmt.Errorf("json: unknown field %q", key)
						}
						return nil
					})
				})
			}
		}
		return nil
	})
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
