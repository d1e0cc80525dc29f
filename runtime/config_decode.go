package runtime

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// SettingsDecoder returns the Decoder a rule's constructor receives: it
// decodes settings (a rule entry's `config` object, as YAML or JSON decoded
// it) into v through v's json tags. It is strict: a key that v does not name
// (case-sensitively) is a *SettingError naming the full key path, and so is a
// value of the wrong type. Absent keys leave v's fields as the constructor
// preset them, which is how rules express their defaults.
func SettingsDecoder(settings map[string]any) Decoder {
	return func(v any) error {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer || rv.IsNil() {
			return fmt.Errorf("%w: settings decode needs a non-nil pointer, got %T", ErrInvalid, v)
		}
		if len(settings) == 0 {
			return nil
		}
		if err := checkKeys(settings, rv.Type(), ""); err != nil {
			return err
		}
		raw, err := json.Marshal(settings)
		if err != nil {
			return &SettingError{Reason: fmt.Sprintf("settings are not a JSON-compatible object: %v", err)}
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return &SettingError{Key: te.Field, Reason: fmt.Sprintf("expected %s, got %s", typeName(te.Type), te.Value)}
			}
			return &SettingError{Reason: oneLine(strings.TrimPrefix(err.Error(), "json: "))}
		}
		return nil
	}
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkKeys walks value (decoded JSON/YAML) along t and reports the first
// key, in sorted order, that t does not have. encoding/json matches field
// names case-insensitively; settings must match exactly, so a key spelled
// "Groups" is reported rather than silently accepted.
func checkKeys(value any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		if t.Implements(jsonUnmarshalerType) || t.Implements(textUnmarshalerType) {
			return nil
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := value.(map[string]any)
		if !ok {
			return nil // a type error; json reports it with the path
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				return &SettingError{Key: join(path, k), Reason: fmt.Sprintf("unknown key (known: %s)", knownList(fields))}
			}
			if err := checkKeys(obj[k], ft, join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := value.(map[string]any)
		if !ok {
			return nil
		}
		for k, v := range obj {
			if err := checkKeys(v, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := value.([]any)
		if !ok {
			return nil
		}
		for i, v := range arr {
			if err := checkKeys(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of t's exported fields (embedded structs
// flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func knownList(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	default:
		return t.String()
	}
}
