package guest

import (
	"errors"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// The call's commands are serialised here (api.go commands) rather than
// with JSON.stringify, which goes character by character through a UTF-16
// reader and looks every object up for toJSON: inside the sandbox that was
// a sixth of a small Action's call. What is written is what the api kept:
// JSON already made for objects and arrays (api.go plainValue), and
// primitives, which this file writes.

// errOutputTooLarge stops writing at the host's output cap.
var errOutputTooLarge = errors.New("over the output cap")

type jsonWriter struct {
	buf []byte
	max int // 0: no cap
}

var (
	typeString = reflect.TypeFor[string]()
	typeInt    = reflect.TypeFor[int64]()
	typeFloat  = reflect.TypeFor[float64]()
	typeBool   = reflect.TypeFor[bool]()
)

// value writes a primitive: a string, a number, a boolean; null for the
// rest (plain() made those null already).
func (w *jsonWriter) value(v goja.Value) {
	if v == nil {
		w.buf = append(w.buf, "null"...)
		return
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
