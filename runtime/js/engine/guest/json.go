package guest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/dop251/goja"
)

// The host's JSON becomes plain JavaScript objects and arrays directly, in
// the input's key order (the host writes it deterministically). goja's
// JSON.parse reads tokens one by one through encoding/json's Decoder, and
// decoding into Go maps first allocated as much again; the call's wrapper
// went through encoding/json as well. One pass here was the largest saving
// of a login's cost inside the sandbox.

var errJSON = errors.New("malformed JSON")

// maxKeys bounds the parser's table of interned object keys: events repeat
// the same few dozen keys, and metadata keys are the users' own.
const maxKeys = 4096

// maxDepth bounds nesting (the host's events are shallow).
const maxDepth = 256

type jsonParser struct {
	rt *goja.Runtime
	b  []byte
	i  int
	// keys interns object keys across calls: a key is one allocation the
	// first time it is seen, none after.
	keys map[string]string
	// items is a stack of array elements, ents one of object entries
	// (indexObject), reused across calls.
	items []any
	ents  []lazyEntry
}

func newParser(rt *goja.Runtime) *jsonParser {
	return &jsonParser{rt: rt, keys: map[string]string{}}
}

// request is the host's call: {"rule": id, "check": true} (compile only)
// or {"rule": id, "trigger": t, "event": {…}, "max_output": n}. The event
// is located (raw[eventStart:eventEnd]) and its members indexed, in the
// same pass: an Action's event is made of that index (event.go), a Rule's
// of the text.
type request struct {
	rule, trigger        string
	check, stats         bool
	raw                  []byte
	eventStart, eventEnd int
	event                []lazyEntry
	maxOutput            int
}

// parseInput reads a call's input in one pass.
func (p *jsonParser) parseInput(b []byte) (req request, err error) {
	p.b, p.i = b, 0
	defer func() { p.b = nil }()
	fail := func(err error) (request, error) {
		return request{}, fmt.Errorf("engine input at byte %d: %w", p.i, err)
	}
	p.space()
	if !p.eat('{') {
		return fail(errJSON)
	}
	for first := true; ; first = false {
		p.space()
		if p.eat('}') {
			break
		}
		if !first && (!p.eat(',') || !p.spaceThen()) {
			return fail(errJSON)
		}
		k, err := p.str()
		if err != nil {
			return fail(err)
		}
		p.space()
		if !p.eat(':') {
			return fail(errJSON)
		}
		p.space()
		switch k {
		case "rule":
			if req.rule, err = p.str(); err != nil {
				return fail(err)
			}
		case "trigger":
			if req.trigger, err = p.str(); err != nil {
				return fail(err)
			}
		case "check":
			switch {
			case p.lit("true"):
				req.check = true
			case p.lit("false"):
			default:
				return fail(fmt.Errorf("%w: check is not a boolean", errJSON))
			}
		case "stats":
			switch {
			case p.lit("true"):
				req.stats = true
			case p.lit("false"):
			default:
				return fail(fmt.Errorf("%w: stats is not a boolean", errJSON))
			}
		case "max_output":
			n, ok := p.number()
			if !ok {
				return fail(fmt.Errorf("%w: max_output is not a number", errJSON))
			}
			if req.maxOutput, err = strconv.Atoi(string(n)); err != nil {
				return fail(fmt.Errorf("%w: max_output %s", errJSON, n))
			}
		case "event":
			if p.i >= len(p.b) || p.b[p.i] != '{' {
				return fail(fmt.Errorf("%w: the event is not an object", errJSON))
			}
			req.eventStart = p.i
			// (room for the secrets and configuration newLazyEvent adds)
			if req.event, err = p.indexObject(2); err != nil {
				return fail(err)
			}
			req.eventEnd = p.i
		default:
			return fail(fmt.Errorf("unknown key %q", k))
		}
	}
	p.space()
	if p.i != len(p.b) {
		return fail(errors.New("data after the input"))
	}
	req.raw = b
	return req, nil
}

// skip passes over one value, checking its syntax without making it.
func (p *jsonParser) skip(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested too deeply", errJSON)
	}
	p.space()
	if p.i >= len(p.b) {
		return errJSON
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		for first := true; ; first = false {
			p.space()
			if p.eat('}') {
				return nil
			}
			if !first && (!p.eat(',') || !p.spaceThen()) {
				return errJSON
			}
			if _, _, err := p.scanStr(); err != nil {
				return err
			}
			p.space()
			if !p.eat(':') {
				return errJSON
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		p.i++
		for first := true; ; first = false {
			p.space()
			if p.eat(']') {
				return nil
			}
			if !first && !p.eat(',') {
				return errJSON
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '"':
		_, _, err := p.scanStr()
		return err
	case c == 't' && p.lit("true"), c == 'f' && p.lit("false"), c == 'n' && p.lit("null"):
		return nil
	}
	if _, ok := p.number(); !ok {
		return errJSON
	}
	return nil
}

// parseJSON turns one JSON value into JavaScript values.
func (p *jsonParser) parseJSON(b []byte) (goja.Value, error) {
	p.b, p.i = b, 0
	defer func() { p.b = nil }()
	v, err := p.value(0)
	if err != nil {
		return nil, fmt.Errorf("JSON at byte %d: %w", p.i, err)
	}
	p.space()
	if p.i != len(p.b) {
		return nil, fmt.Errorf("JSON: data after the value at byte %d", p.i)
	}
	return v, nil
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// spaceThen skips white space and reports whether input is left.
func (p *jsonParser) spaceThen() bool {
	p.space()
	return p.i < len(p.b)
}

func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) value(depth int) (goja.Value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested too deeply", errJSON)
	}
	p.space()
	if p.i >= len(p.b) {
		return nil, errJSON
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		o := p.rt.NewObject()
		for first := true; ; first = false {
			p.space()
			if p.eat('}') {
				return o, nil
			}
			if !first && (!p.eat(',') || !p.spaceThen()) {
				return nil, errJSON
			}
			k, err := p.key()
			if err != nil {
				return nil, err
			}
			p.space()
			if !p.eat(':') {
				return nil, errJSON
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := o.DefineDataProperty(k, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
				return nil, err
			}
		}
	case c == '[':
		p.i++
		base := len(p.items)
		for first := true; ; first = false {
			p.space()
			if p.eat(']') {
				a := p.rt.NewArray(p.items[base:]...)
				clear(p.items[base:])
				p.items = p.items[:base]
				return a, nil
			}
			if !first && !p.eat(',') {
				return nil, errJSON
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			p.items = append(p.items, v)
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return p.rt.ToValue(s), nil
	case c == 't' && p.lit("true"):
		return p.rt.ToValue(true), nil
	case c == 'f' && p.lit("false"):
		return p.rt.ToValue(false), nil
	case c == 'n' && p.lit("null"):
		return goja.Null(), nil
	}
	n, ok := p.number()
	if !ok {
		return nil, errJSON
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		// Out of range: JSON.parse gives ±Infinity, as ParseFloat does.
		var ne *strconv.NumError
		if !errors.As(err, &ne) || !errors.Is(ne.Err, strconv.ErrRange) {
			return nil, errJSON
		}
	}
	return p.rt.ToValue(f), nil
}

// number scans a number by JSON's grammar.
func (p *jsonParser) number() ([]byte, bool) {
	start := p.i
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.digits() > 0:
	default:
		return nil, false
	}
	if p.eat('.') && p.digits() == 0 {
		return nil, false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return nil, false
		}
	}
	return p.b[start:p.i], true
}

func (p *jsonParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

func (p *jsonParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// key reads an object key, interned.
func (p *jsonParser) key() (string, error) {
	raw, slow, err := p.scanStr()
	if err != nil || slow {
		return p.decodeStr(raw, slow, err)
	}
	inner := raw[1 : len(raw)-1]
	if k, ok := p.keys[string(inner)]; ok {
		return k, nil
	}
	k := string(inner)
	if len(p.keys) < maxKeys {
		p.keys[k] = k
	}
	return k, nil
}

// str reads a string.
func (p *jsonParser) str() (string, error) {
	raw, slow, err := p.scanStr()
	return p.decodeStr(raw, slow, err)
}

func (p *jsonParser) decodeStr(raw []byte, slow bool, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if !slow {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %v", errJSON, err)
	}
	return s, nil
}

// scanStr finds the end of a string. Plain ASCII without escapes is the
// fast path; the rest (slow: escapes, other characters, which
// encoding/json checks for valid UTF-8 as JSON.parse would) is decoded by
// encoding/json.
func (p *jsonParser) scanStr() (raw []byte, slow bool, err error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false, errJSON
	}
	start := p.i
	for p.i++; p.i < len(p.b); p.i++ {
		// Eight bytes at a time while none of them needs a look: inside
		// the sandbox a byte at a time was a tenth of a small Action's
		// call (an event is mostly strings).
		for p.i+8 <= len(p.b) {
			x := binary.LittleEndian.Uint64(p.b[p.i:])
			if special := specialBytes(x); special != 0 {
				p.i += bits.TrailingZeros64(special) / 8
				break
			}
			p.i += 8
		}
		if p.i >= len(p.b) {
			break
		}
		switch c := p.b[p.i]; {
		case c == '\\':
			slow = true
			p.i++
		case c == '"':
			p.i++
			return p.b[start:p.i], slow, nil
		case c < 0x20:
			return nil, false, fmt.Errorf("%w: control character in a string", errJSON)
		case c >= 0x80:
			slow = true
		}
	}
	return nil, false, errJSON
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// specialBytes marks (with its high bit) the first byte of x, in memory
// order, that scanStr must look at: a quote, a backslash, a control
// character or a byte of a multi-byte character; bytes after that one may
// be marked too. Zero when there is none.
func specialBytes(x uint64) uint64 {
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return ((q-ones)&^q | (b-ones)&^b | (x-0x20*ones)&^x | x) & highs
}
