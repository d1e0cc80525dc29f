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
	key    string
	ks, ke int
	vs, ve int
	val    goja.Value // nil: not made yet
}

func (l *lazyObject) keyOf(en *lazyEntry) string {
	if en.ke > en.ks {
		return string(l.raw[en.ks:en.ke])
	}
	return en.key
}

var _ goja.DynamicObject = (*lazyObject)(nil)

// newLazyObject indexes the object at raw[start:end] (valid JSON: the
// parser skipped it already).
func (e *Engine) newLazyObject(raw []byte, start, end int) (*lazyObject, error) {
	// Entries are collected in the engine's scratch slice and copied out
	// at their final size: one allocation instead of a growing slice's
	// several. (Objects nest, so the scratch is a stack.)
	base := len(e.scratch)
	defer func() {
		clear(e.scratch[base:])
		e.scratch = e.scratch[:base]
	}()
	l := &lazyObject{e: e, raw: raw}
	p := &jsonParser{rt: e.rt, b: raw[:end], i: start}
	p.eat('{')
	for first := true; ; first = false {
		p.space()
		if p.eat('}') {
			l.ents = slices.Clone(e.scratch[base:])
			return l, nil
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
			en.ks, en.ke = p.i-len(rawKey)+1, p.i-1
			if en.ke == en.ks {
				en.ks, en.ke = 0, 0 // the empty key
			}
		}
		p.space()
		if !p.eat(':') {
			return nil, errJSON
		}
		p.space()
		en.vs = p.i
		if err := p.skip(1); err != nil {
			return nil, err
		}
		en.ve = p.i
		l.ents = e.scratch[base:]
		if i := l.index(l.keyOf(&en)); i >= 0 {
			l.ents[i] = en // a repeated key: the last one counts, as in JSON.parse
			continue
		}
		e.scratch = append(e.scratch, en)
	}
}

func (l *lazyObject) index(key string) int {
	for i := range l.ents {
		en := &l.ents[i]
		if en.ke > en.ks {
			if string(l.raw[en.ks:en.ke]) == key {
				return i
			}
		} else if en.key == key {
			return i
		}
	}
	return -1
}

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
		v, err := l.e.lazyValue(l.raw, en.vs, en.ve)
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

// newLazyEvent is an Action's event: the host's event object with the
// rule's secrets and configuration.
func (e *Engine) newLazyEvent(raw []byte, start, end int, r *rule) (*goja.Object, error) {
	l, err := e.newLazyObject(raw, start, end)
	if err != nil {
		return nil, err
	}
	l.set("secrets", r.secrets)
	l.set("configuration", r.configuration)
	return e.rt.NewDynamicObject(l), nil
}
