package guest

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// The call's commands object is serialised here rather than with
// JSON.stringify, which goes character by character through a UTF-16
// reader and looks every object up for toJSON: inside the sandbox that was
// a sixth of a small Action's call. The object is what the prelude built
// (its values went through plain(): objects, arrays, strings, finite
// numbers, booleans, null), so this writer needs no toJSON, no cycle
// check beyond a depth bound, no replacer.

// errOutputTooLarge stops writing at the host's output cap.
var errOutputTooLarge = errors.New("over the output cap")

type jsonWriter struct {
	buf []byte
	max int // 0: no cap
}

var (
	typeString  = reflect.TypeFor[string]()
	typeInt     = reflect.TypeFor[int64]()
	typeFloat   = reflect.TypeFor[float64]()
	typeBool    = reflect.TypeFor[bool]()
	maxOutDepth = 128
)

// The commands object's own members and theirs are known (the prelude's
// part()): they are read by name, and only claims, metadata and what
// they hold are enumerated (goja's Keys allocates an iterator per object).
var (
	commandKeys = []string{"id_token", "access_token", "app_metadata", "user_metadata", "access", "log"}
	tokenKeys   = []string{"claims", "add_scopes", "remove_scopes"}
	accessKeys  = []string{"vote", "reason", "code"}
	logKeys     = []string{"level", "msg"}
)

// commands writes the prelude's commands object.
func (w *jsonWriter) commands(o *goja.Object) error {
	return w.known(o, commandKeys, func(k string, v goja.Value) error {
		switch k {
		case "id_token", "access_token":
			return w.knownObject(v, tokenKeys, nil)
		case "access":
			return w.knownObject(v, accessKeys, nil)
		case "log":
			lo, ok := v.(*goja.Object)
			if !ok {
				return errors.New("prelude: log is not an array")
			}
			return w.array(lo, func(v goja.Value) error { return w.knownObject(v, logKeys, nil) })
		}
		return w.value(v, 1)
	})
}

func (w *jsonWriter) knownObject(v goja.Value, keys []string, member func(k string, v goja.Value) error) error {
	o, ok := v.(*goja.Object)
	if !ok {
		return fmt.Errorf("prelude: %v is not an object", v)
	}
	return w.known(o, keys, member)
}

// known writes the members of o named in keys, in that order; member
// writes a value (nil: as any value).
func (w *jsonWriter) known(o *goja.Object, keys []string, member func(k string, v goja.Value) error) error {
	w.buf = append(w.buf, '{')
	first := true
	for _, k := range keys {
		v := o.Get(k)
		if v == nil || goja.IsUndefined(v) {
			continue
		}
		if !first {
			w.buf = append(w.buf, ',')
		}
		first = false
		w.str(k)
		w.buf = append(w.buf, ':')
		var err error
		if member != nil {
			err = member(k, v)
		} else {
			err = w.value(v, 2)
		}
		if err != nil {
			return err
		}
	}
	w.buf = append(w.buf, '}')
	return nil
}

func (w *jsonWriter) array(o *goja.Object, elem func(goja.Value) error) error {
	n := int(o.Get("length").ToInteger())
	w.buf = append(w.buf, '[')
	for i := range n {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		if err := elem(o.Get(strconv.Itoa(i))); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, ']')
	return nil
}

func (w *jsonWriter) value(v goja.Value, depth int) error {
	if w.max > 0 && len(w.buf) > w.max {
		return errOutputTooLarge
	}
	if depth > maxOutDepth {
		return fmt.Errorf("the commands are nested deeper than %d levels", maxOutDepth)
	}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		w.buf = append(w.buf, "null"...)
		return nil
	}
	if o, ok := v.(*goja.Object); ok {
		return w.object(o, depth)
	}
	switch v.ExportType() {
	case typeString:
		w.str(v.String())
	case typeInt:
		w.buf = strconv.AppendInt(w.buf, v.ToInteger(), 10)
	case typeFloat:
		// JavaScript's own number formatting, as JSON.stringify's.
		if f := v.ToFloat(); f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308 {
			w.buf = append(w.buf, "null"...)
		} else {
			w.buf = append(w.buf, v.String()...)
		}
	case typeBool:
		w.buf = strconv.AppendBool(w.buf, v.ToBoolean())
	default:
		w.buf = append(w.buf, "null"...)
	}
	return nil
}

func (w *jsonWriter) object(o *goja.Object, depth int) error {
	if o.ClassName() == "Array" {
		return w.array(o, func(v goja.Value) error { return w.value(v, depth+1) })
	}
	w.buf = append(w.buf, '{')
	first := true
	for _, k := range o.Keys() {
		v := o.Get(k)
		if v == nil || goja.IsUndefined(v) {
			continue
		}
		if _, fn := goja.AssertFunction(v); fn {
			continue
		}
		if !first {
			w.buf = append(w.buf, ',')
		}
		first = false
		w.str(k)
		w.buf = append(w.buf, ':')
		if err := w.value(v, depth+1); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, '}')
	return nil
}

const hexDigits = "0123456789abcdef"

// str writes a JSON string: UTF-8 as it is, quotes, backslashes and
// control characters escaped.
func (w *jsonWriter) str(s string) {
	w.buf = append(w.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				w.buf = append(w.buf, s[start:i]...)
				w.buf = append(w.buf, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		w.buf = append(w.buf, s[start:i]...)
		switch c {
		case '"', '\\':
			w.buf = append(w.buf, '\\', c)
		case '\n':
			w.buf = append(w.buf, '\\', 'n')
		case '\r':
			w.buf = append(w.buf, '\\', 'r')
		case '\t':
			w.buf = append(w.buf, '\\', 't')
		default:
			w.buf = append(w.buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	w.buf = append(w.buf, s[start:]...)
	w.buf = append(w.buf, '"')
}
