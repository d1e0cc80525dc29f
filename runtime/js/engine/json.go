//go:build wasip1

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/dop251/goja"
)

// parseJSON turns the host's event JSON straight into plain JavaScript
// objects and arrays, in the input's key order (the host writes it
// deterministically). goja's JSON.parse reads tokens one by one through
// encoding/json's Decoder and decoding into Go maps first allocated as
// much again; this was most of a login's cost.
func parseJSON(rt *goja.Runtime, b []byte) (goja.Value, error) {
	p := &jsonParser{rt: rt, b: b}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, fmt.Errorf("event JSON: data after the value at byte %d", p.i)
	}
	return v, nil
}

type jsonParser struct {
	rt *goja.Runtime
	b  []byte
	i  int
}

var errJSON = errors.New("event JSON: malformed")

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

func (p *jsonParser) value(depth int) (goja.Value, error) {
	if depth > 256 {
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
		p.space()
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			return o, nil
		}
		for {
			p.space()
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return nil, errJSON
			}
			p.i++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := o.Set(k, v); err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.b) {
				return nil, errJSON
			}
			if p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.b[p.i] == '}' {
				p.i++
				return o, nil
			}
			return nil, errJSON
		}
	case c == '[':
		p.i++
		var items []any
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return p.rt.NewArray(), nil
		}
		for {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			items = append(items, v)
			p.space()
			if p.i >= len(p.b) {
				return nil, errJSON
			}
			if p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.b[p.i] == ']' {
				p.i++
				return p.rt.NewArray(items...), nil
			}
			return nil, errJSON
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
	default:
		start := p.i
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '-', '+', '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				p.i++
				continue
			}
			break
		}
		f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
		if err != nil || start == p.i {
			return nil, errJSON
		}
		return p.rt.ToValue(f), nil
	}
}

func (p *jsonParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str reads a string; escapes (rare in an event) go through encoding/json.
func (p *jsonParser) str() (string, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", errJSON
	}
	start := p.i
	escaped := false
	for p.i++; p.i < len(p.b); p.i++ {
		switch p.b[p.i] {
		case '\\':
			escaped = true
			p.i++
		case '"':
			p.i++
			if !escaped {
				return string(p.b[start+1 : p.i-1]), nil
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return "", fmt.Errorf("%w: %v", errJSON, err)
			}
			return s, nil
		}
	}
	return "", errJSON
}
