package guest

import (
	"slices"

	"github.com/dop251/goja"
)

// lazyObject is an object of an Action's event (the event itself, user,
// client, app_metadata, …). Its members stay JSON until the script first
// reads them: an Action typically reads a handful of the event's fifty or
// so values, and making JavaScript objects out of all of them (each object
// a dozen allocations inside the sandbox, each string two) was most of a
// small Action's call. Arrays are made whole when first read.
//
// It is a goja DynamicObject: it behaves as a plain object for reads,
// writes, deletes, `in`, for…in, Object.keys/entries, spread and
// JSON.stringify, with Object.prototype as its prototype. What a
// DynamicObject cannot do is Object.defineProperty with other than plain
// writable, enumerable, configurable values, and Object.freeze or
// Object.preventExtensions (a TypeError); copy the object first
// ({...event.user}) to freeze it.
type lazyObject struct {
	e    *Engine
	raw  []byte // the call's input: keys and values are spans of it
	ents []lazyEntry
}

type lazyEntry struct {
	// key is set when the key had escapes or was written by the script;
	// otherwise it is raw[ks:ke], compared without making a string.
	// Spans are int32: inputs live in a 32-bit sandbox, and a smaller
	// entry is less to allocate and clear for every object read.
	key    string
	ks, ke int32
	vs, ve int32
	val    goja.Value // nil: not made yet
}

func (l *lazyObject) keyOf(en *lazyEntry) string { return entryKey(l.raw, en) }

var _ goja.DynamicObject = (*lazyObject)(nil)

// newLazyObject indexes the object at raw[start:end] (valid JSON: the
// parser skipped it already).
func (e *Engine) newLazyObject(raw []byte, start, end int) (*lazyObject, error) {
	p := jsonParser{b: raw[:end], i: start, ents: e.parser.ents}
	ents, err := p.indexObject(0)
	e.parser.ents = p.ents
	if err != nil {
		return nil, err
	}
	return &lazyObject{e: e, raw: raw, ents: ents}, nil
}

// indexObject reads the object at p.i, leaving p.i after it: its members'
// keys and the spans of their values, which it checks but does not make.
// Entries are collected in the parser's scratch slice and copied out at
// their final size: one allocation instead of a growing slice's several.
// (Objects nest, so the scratch is a stack.) The copy has room for extra
// more entries.
func (p *jsonParser) indexObject(extra int) ([]lazyEntry, error) {
	base := len(p.ents)
	defer func() {
		clear(p.ents[base:])
		p.ents = p.ents[:base]
	}()
	if !p.eat('{') {
		return nil, errJSON
	}
	for first := true; ; first = false {
		p.space()
		if p.eat('}') {
			ents := make([]lazyEntry, len(p.ents)-base, len(p.ents)-base+extra)
			copy(ents, p.ents[base:])
			return ents, nil
		}
		if !first && (!p.eat(',') || !p.spaceThen()) {
			return nil, errJSON
		}
		var en lazyEntry
		rawKey, slow, err := p.scanStr()
		if err != nil {
			return nil, err
		}
		if slow {
			if en.key, err = p.decodeStr(rawKey, true, nil); err != nil {
				return nil, err
			}
		} else {
			en.ks, en.ke = int32(p.i-len(rawKey)+1), int32(p.i-1)
			if en.ke == en.ks {
				en.ks, en.ke = 0, 0 // the empty key
			}
		}
		p.space()
		if !p.eat(':') {
			return nil, errJSON
		}
		p.space()
		en.vs = int32(p.i)
		if err := p.skip(1); err != nil {
			return nil, err
		}
		en.ve = int32(p.i)
		if i := p.repeated(p.ents[base:], &en); i >= 0 {
			p.ents[base+i] = en // a repeated key: the last one counts, as in JSON.parse
			continue
		}
		p.ents = append(p.ents, en)
	}
}

// repeated is the index of the entry in ents with en's key, -1 if none.
func (p *jsonParser) repeated(ents []lazyEntry, en *lazyEntry) int {
	if en.ke <= en.ks {
		return entryIndex(p.b, ents, en.key)
	}
	key := p.b[en.ks:en.ke]
	for i := range ents {
		o := &ents[i]
		if o.ke > o.ks {
			if string(p.b[o.ks:o.ke]) == string(key) {
				return i
			}
		} else if o.key == string(key) {
			return i
		}
	}
	return -1
}

func entryKey(raw []byte, en *lazyEntry) string {
	if en.ke > en.ks {
		return string(raw[en.ks:en.ke])
	}
	return en.key
}

func entryIndex(raw []byte, ents []lazyEntry, key string) int {
	for i := range ents {
		en := &ents[i]
		if en.ke > en.ks {
			if string(raw[en.ks:en.ke]) == key {
				return i
			}
		} else if en.key == key {
			return i
		}
	}
	return -1
}

func (l *lazyObject) index(key string) int { return entryIndex(l.raw, l.ents, key) }

// set puts a value in (the rule's secrets and configuration, or a
// script's write).
func (l *lazyObject) set(key string, val goja.Value) {
	if i := l.index(key); i >= 0 {
		l.ents[i].val = val
		return
	}
	l.ents = append(l.ents, lazyEntry{key: key, val: val})
}

// Get makes a member on first read.
func (l *lazyObject) Get(key string) goja.Value {
	i := l.index(key)
	if i < 0 {
		return nil
	}
	en := &l.ents[i]
	if en.val == nil {
		v, err := l.e.lazyValue(l.raw, int(en.vs), int(en.ve))
		if err != nil {
			panic(l.e.rt.NewTypeError("event member %s: %v", key, err))
		}
		en.val = v
	}
	return en.val
}

func (e *Engine) lazyValue(raw []byte, start, end int) (goja.Value, error) {
	if raw[start] == '{' {
		o, err := e.newLazyObject(raw, start, end)
		if err != nil {
			return nil, err
		}
		return e.rt.NewDynamicObject(o), nil
	}
	return e.parser.parseJSON(raw[start:end])
}

func (l *lazyObject) Set(key string, val goja.Value) bool {
	l.set(key, val)
	return true
}

func (l *lazyObject) Has(key string) bool { return l.index(key) >= 0 }

func (l *lazyObject) Delete(key string) bool {
	if i := l.index(key); i >= 0 {
		l.ents = slices.Delete(l.ents, i, i+1)
	}
	return true
}

func (l *lazyObject) Keys() []string {
	keys := make([]string, len(l.ents))
	for i := range l.ents {
		keys[i] = l.keyOf(&l.ents[i])
	}
	return keys
}

// newLazyEvent is an Action's event: the host's event object (indexed by
// parseInput) with the rule's secrets and configuration.
func (e *Engine) newLazyEvent(req *request, r *rule) *goja.Object {
	l := &lazyObject{e: e, raw: req.raw, ents: req.event}
	req.event = nil
	l.set("secrets", r.secrets)
	l.set("configuration", r.configuration)
	return e.rt.NewDynamicObject(l)
}
