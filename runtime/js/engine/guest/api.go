package guest

import (
	"cmp"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"

	"github.com/dop251/goja"
)

// The api a rule calls (api.idToken.setCustomClaim and the rest, and what
// a Rule's callback hands back) is Go: every call writes straight into the
// call's commands (callState), which are serialised once at the end. In
// JavaScript (the prelude's part() and plain(), its state object, __run
// and __finish around the handler) that bookkeeping was half of a typical
// Action's call inside the sandbox: each JavaScript function call, object
// and property write is interpreted, and each Go to JavaScript call sets up
// a fresh goja stack.
//
// What a script sees is unchanged (TestSemantics): a value is kept as the
// prelude's plain() copied it (as JSON would keep it, see plainValue) at
// the time of the call, claims and metadata keep JavaScript's key order
// (array-index keys first, ascending, then insertion order), scopes and
// the deny vote follow the same rules.

// Parts of the commands, in the order they are written.
const (
	partIDToken = iota
	partAccessToken
	partAppMetadata
	partUserMetadata
	numParts
)

var partNames = [numParts]string{"id_token", "access_token", "app_metadata", "user_metadata"}

// maxPlainDepth is plain()'s nesting bound.
const maxPlainDepth = 64

const (
	maxLogLines = 100
	noIndex     = math.MaxUint32
)

// member is one key of a claims or metadata object: a primitive as it is
// (strings are immutable, so keeping the value is a copy), an object or
// array as the JSON text of its plain copy.
type member struct {
	key  string
	idx  uint32 // the key as an array index, noIndex when it is none
	json []byte
	prim goja.Value
}

// jsObject is a claims or metadata object.
type jsObject struct {
	members []member
	indexed int            // members with array-index keys
	index   map[string]int // key to member, once there are many
}

const indexFrom = 16

func (o *jsObject) find(key string) int {
	if o.index != nil {
		if i, ok := o.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range o.members {
		if o.members[i].key == key {
			return i
		}
	}
	return -1
}

func (o *jsObject) put(key string, json []byte, prim goja.Value) {
	if i := o.find(key); i >= 0 {
		o.members[i].json, o.members[i].prim = json, prim
		return
	}
	idx := arrayIndex(key)
	if idx != noIndex {
		o.indexed++
	}
	o.members = append(o.members, member{key: key, idx: idx, json: json, prim: prim})
	switch n := len(o.members); {
	case o.index != nil:
		o.index[key] = n - 1
	case n >= indexFrom:
		o.index = make(map[string]int, 2*n)
		for i := range o.members {
			o.index[o.members[i].key] = i
		}
	}
}

func (o *jsObject) reset() {
	clear(o.members)
	o.members, o.indexed, o.index = o.members[:0], 0, nil
}

// arrayIndex is key as an array index (a canonical decimal below 2³²-1),
// or noIndex: JavaScript lists those keys first, in ascending order.
func arrayIndex(key string) uint32 {
	if key == "" || len(key) > 10 || (key[0] == '0' && len(key) > 1) {
		return noIndex
	}
	var n uint64
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < '0' || c > '9' {
			return noIndex
		}
		n = n*10 + uint64(c-'0')
	}
	if n >= noIndex {
		return noIndex
	}
	return uint32(n)
}

type logLine struct{ level, msg string }

// callState is what the call in flight asked for.
type callState struct {
	id      uint64 // the call's number; 0 between calls
	made    [numParts]bool
	objs    [numParts]jsObject
	add     []string // access_token add_scopes
	remove  []string // access_token remove_scopes
	denied  bool
	reason  string
	code    string
	logs    []logLine
	settled bool
	failed  bool
	err     goja.Value // what the handler threw or rejected with (nil: no reason)
}

func (s *callState) reset(id uint64) {
	for i := range s.objs {
		s.objs[i].reset()
	}
	clear(s.logs)
	*s = callState{id: id, objs: s.objs, add: s.add[:0], remove: s.remove[:0], logs: s.logs[:0]}
}

func (e *Engine) inCall() *callState {
	if e.st.id == 0 {
		panic(e.rt.NewTypeError("the api is only available while a rule runs"))
	}
	return &e.st
}

// natives are the prelude's view of the api (see prelude.js).
func (e *Engine) natives() *goja.Object {
	o := e.rt.NewObject()
	set := func(name string, f func(goja.FunctionCall) goja.Value) {
		if err := o.Set(name, f); err != nil {
			panic(err)
		}
	}
	claim := func(part int) func(goja.FunctionCall) goja.Value {
		return func(c goja.FunctionCall) goja.Value {
			name := c.Argument(0)
			if !goja.IsString(name) || name.String() == "" {
				panic(e.rt.NewTypeError("setCustomClaim: the claim name must be a non-empty string"))
			}
			e.put(part, name.String(), c.Argument(1))
			return goja.Undefined()
		}
	}
	metadata := func(part int) func(goja.FunctionCall) goja.Value {
		return func(c goja.FunctionCall) goja.Value {
			key := c.Argument(0)
			if !goja.IsString(key) || key.String() == "" {
				panic(e.rt.NewTypeError("the metadata key must be a non-empty string"))
			}
			e.put(part, key.String(), c.Argument(1))
			return goja.Undefined()
		}
	}
	set("idTokenClaim", claim(partIDToken))
	set("accessTokenClaim", claim(partAccessToken))
	set("appMetadata", metadata(partAppMetadata))
	set("userMetadata", metadata(partUserMetadata))
	set("addScope", func(c goja.FunctionCall) goja.Value {
		st := e.accessToken()
		st.addScope(jsString(c.Argument(0)))
		return goja.Undefined()
	})
	set("removeScope", func(c goja.FunctionCall) goja.Value {
		st := e.accessToken()
		st.removeScope(jsString(c.Argument(0)))
		return goja.Undefined()
	})
	// deny(reason) at login; code 'access_denied'. The first vote stands.
	set("deny", func(c goja.FunctionCall) goja.Value {
		st := e.inCall()
		if !st.denied {
			st.denied, st.reason, st.code = true, optString(c.Argument(0)), "access_denied"
		}
		return goja.Undefined()
	})
	// m2mDeny(code, reason): credentials-exchange, code an OAuth error code.
	set("m2mDeny", func(c goja.FunctionCall) goja.Value {
		st := e.inCall()
		if !st.denied {
			reason, code := optString(c.Argument(1)), "access_denied"
			if v := c.Argument(0); v.ToBoolean() {
				code = jsString(v)
			}
			st.denied, st.reason, st.code = true, reason, code
		}
		return goja.Undefined()
	})
	// Rules: put(part, key, value) copies a value from the context the
	// callback handed back; ruleDeny(reason) is an UnauthorizedError.
	set("put", func(c goja.FunctionCall) goja.Value {
		e.put(int(c.Argument(0).ToInteger()), c.Argument(1).String(), c.Argument(2))
		return goja.Undefined()
	})
	set("part", func(c goja.FunctionCall) goja.Value {
		part := int(c.Argument(0).ToInteger())
		if part >= 0 && part < numParts {
			e.inCall().made[part] = true
		}
		return goja.Undefined()
	})
	set("ruleDeny", func(c goja.FunctionCall) goja.Value {
		st := e.inCall()
		st.denied, st.reason, st.code = true, jsString(c.Argument(0)), "unauthorized"
		return goja.Undefined()
	})
	// callID() is the call in flight; settle(id) and fail(id, reason)
	// settle that call only (a callback kept past its call does nothing).
	set("callID", func(goja.FunctionCall) goja.Value { return e.rt.ToValue(e.st.id) })
	set("settle", func(c goja.FunctionCall) goja.Value {
		if e.st.id != 0 && uint64(c.Argument(0).ToInteger()) == e.st.id {
			e.st.settled = true
		}
		return goja.Undefined()
	})
	set("fail", func(c goja.FunctionCall) goja.Value {
		if e.st.id != 0 && uint64(c.Argument(0).ToInteger()) == e.st.id {
			e.st.fail(c.Argument(1))
		}
		return goja.Undefined()
	})
	// logOpen() reports whether a log line would be kept; log(level, msg)
	// keeps it.
	set("logOpen", func(goja.FunctionCall) goja.Value {
		return e.rt.ToValue(e.st.id != 0 && len(e.st.logs) < maxLogLines)
	})
	set("log", func(c goja.FunctionCall) goja.Value {
		if e.st.id != 0 {
			e.st.logs = append(e.st.logs, logLine{level: c.Argument(0).String(), msg: c.Argument(1).String()})
		}
		return goja.Undefined()
	})
	if err := o.Set("cache", e.cache); err != nil {
		panic(err)
	}
	return o
}

// optString is String(v), or the empty string for undefined.
func optString(v goja.Value) string {
	if goja.IsUndefined(v) {
		return ""
	}
	return jsString(v)
}

// jsString is String(v).
func jsString(v goja.Value) string {
	if s, ok := v.(*goja.Symbol); ok {
		return "Symbol(" + s.String() + ")"
	}
	return v.String()
}

// fail records a rejection or a Rule's error: settled, with that reason.
func (s *callState) fail(reason goja.Value) {
	s.settled, s.failed = true, true
	if goja.IsUndefined(reason) {
		s.err = nil // the handler rejected without a reason
	} else {
		s.err = reason
	}
}

// access_token's part holds its scopes too.
func (e *Engine) accessToken() *callState {
	st := e.inCall()
	st.made[partAccessToken] = true
	return st
}

func (st *callState) addScope(s string) {
	st.remove = slices.DeleteFunc(st.remove, func(x string) bool { return x == s })
	if !slices.Contains(st.add, s) {
		st.add = append(st.add, s)
	}
}

func (st *callState) removeScope(s string) {
	st.add = slices.DeleteFunc(st.add, func(x string) bool { return x == s })
	if !slices.Contains(st.remove, s) {
		st.remove = append(st.remove, s)
	}
}

// put sets key of a part to plain(v).
func (e *Engine) put(part int, key string, v goja.Value) {
	st := e.inCall()
	if part < 0 || part >= numParts {
		panic(e.rt.NewTypeError("no such part"))
	}
	// The part is made before the value is copied, as the prelude's
	// part(…)[key] = plain(v) did: a copy that throws leaves it made.
	st.made[part] = true
	var json []byte
	var prim goja.Value
	if o, ok := v.(*goja.Object); ok && !isFunction(o) {
		w := e.valueWriter()
		defer e.releaseWriter(w) // also when a getter or toJSON throws
		e.plainObject(w, o, 0)
		json = slices.Clone(w.buf)
	} else {
		prim = plainPrimitive(v)
	}
	// obj['__proto__'] = x sets the object's prototype: not a key.
	if key != "__proto__" {
		st.objs[part].put(key, json, prim)
	}
}

// valueWriter lends the engine's scratch writer, or a new one when a
// toJSON or getter called the api while a value was being copied.
func (e *Engine) valueWriter() *jsonWriter {
	if e.valBusy {
		return &jsonWriter{}
	}
	e.valBusy = true
	e.val.buf, e.val.max = e.val.buf[:0], 0
	return &e.val
}

func (e *Engine) releaseWriter(w *jsonWriter) {
	if w == &e.val {
		e.valBusy = false
		if cap(w.buf) > 64<<10 {
			w.buf = nil
		}
	}
}

func isFunction(o *goja.Object) bool {
	_, ok := goja.AssertFunction(o)
	return ok
}

// plainPrimitive is plain() of a value that is not an object (or is a
// function): strings, booleans and finite numbers as they are, null for
// the rest.
func plainPrimitive(v goja.Value) goja.Value {
	if v == nil {
		return goja.Null()
	}
	if _, ok := v.(*goja.Symbol); ok {
		return goja.Null()
	}
	switch v.ExportType() {
	case typeString, typeBool, typeInt:
		return v
	case typeFloat:
		if f := v.ToFloat(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return v
		}
	}
	return goja.Null()
}

var proxyType = reflect.TypeFor[goja.Proxy]()

// isArray is Array.isArray.
func (e *Engine) isArray(o *goja.Object) bool {
	if o.ClassName() == "Array" {
		return true
	}
	if o.ExportType() != proxyType {
		return false
	}
	r, err := e.arrayIsArray(goja.Undefined(), o)
	if err != nil {
		panic(err)
	}
	return r.ToBoolean()
}

// plainValue writes the JSON of plain(v): what the prelude's plain() made
// of a value (and output.go then wrote), in one step.
//
//	undefined, null, functions, symbols, NaN, ±Infinity: null
//	strings, booleans, finite numbers: as they are
//	objects with a toJSON method: plain(v.toJSON())
//	arrays (Array.isArray): every element, holes as null
//	other objects: Object.keys(v) whose values are neither undefined nor
//	  functions, in JavaScript's key order; a key __proto__ is dropped
//	nested deeper than 64 levels (or circular): TypeError
//
// A getter, proxy trap or toJSON that throws throws through the api call
// that asked for the copy.
func (e *Engine) plainValue(w *jsonWriter, v goja.Value, depth int) {
	if o, ok := v.(*goja.Object); ok && !isFunction(o) {
		e.plainObject(w, o, depth)
		return
	}
	w.value(plainPrimitive(v))
}

func (e *Engine) plainObject(w *jsonWriter, o *goja.Object, depth int) {
	if depth > maxPlainDepth {
		panic(e.rt.NewTypeError("value nested too deeply (or circular)"))
	}
	if toJSON, ok := goja.AssertFunction(o.Get("toJSON")); ok {
		r, err := toJSON(o)
		if err != nil {
			panic(err)
		}
		e.plainValue(w, r, depth+1)
		return
	}
	if e.isArray(o) {
		w.buf = append(w.buf, '[')
		for i := int64(0); i < o.Get("length").ToInteger(); i++ {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			e.plainValue(w, o.Get(indexKey(i)), depth+1)
		}
		w.buf = append(w.buf, ']')
		return
	}
	keys := o.Keys()
	if hasIndexKey(keys) {
		// The copy is a fresh object: array-index keys come first,
		// whatever order the original (a proxy, an event object) gave.
		slices.SortStableFunc(keys, func(a, b string) int {
			return cmp.Compare(arrayIndex(a), arrayIndex(b))
		})
	}
	w.buf = append(w.buf, '{')
	first := true
	for _, k := range keys {
		x := o.Get(k)
		if x == nil || goja.IsUndefined(x) || k == "__proto__" {
			continue
		}
		if xo, ok := x.(*goja.Object); ok && isFunction(xo) {
			continue
		}
		if !first {
			w.buf = append(w.buf, ',')
		}
		first = false
		w.str(k)
		w.buf = append(w.buf, ':')
		e.plainValue(w, x, depth+1)
	}
	w.buf = append(w.buf, '}')
}

func hasIndexKey(keys []string) bool {
	for _, k := range keys {
		if len(k) > 0 && k[0] >= '0' && k[0] <= '9' && arrayIndex(k) != noIndex {
			return true
		}
	}
	return false
}

var indexKeys = func() (s [64]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return
}()

func indexKey(i int64) string {
	if i < int64(len(indexKeys)) {
		return indexKeys[i]
	}
	return strconv.FormatInt(i, 10)
}

// A call's outcome when it did not settle (an Action's, a Rule's), or
// failed without a reason.
var (
	errActionPending = errors.New("Error: the handler's promise never settled (timers and network calls are not supported)")
	errRulePending   = errors.New("Error: the rule returned without calling its callback, and nothing left could call it (timers and network calls are not supported)")
	errNoReason      = errors.New("Error: the handler rejected without a reason")
)

// commands writes the call's commands JSON: its parts in the order
// id_token, access_token, app_metadata, user_metadata, access, log, each
// only when the rule touched it.
func (e *Engine) commands(w *jsonWriter) error {
	st := &e.st
	w.buf = append(w.buf, '{')
	first := true
	key := func(k string) {
		if !first {
			w.buf = append(w.buf, ',')
		}
		first = false
		w.str(k)
		w.buf = append(w.buf, ':')
	}
	for part := range numParts {
		if !st.made[part] {
			continue
		}
		key(partNames[part])
		if part == partIDToken || part == partAccessToken {
			w.buf = append(w.buf, `{"claims":`...)
		}
		if err := w.object(&st.objs[part]); err != nil {
			return err
		}
		if part == partAccessToken {
			w.buf = append(w.buf, `,"add_scopes":`...)
			w.strings(st.add)
			w.buf = append(w.buf, `,"remove_scopes":`...)
			w.strings(st.remove)
		}
		if part == partIDToken || part == partAccessToken {
			w.buf = append(w.buf, '}')
		}
	}
	if st.denied {
		key("access")
		w.buf = append(w.buf, `{"vote":"deny","reason":`...)
		w.str(st.reason)
		w.buf = append(w.buf, `,"code":`...)
		w.str(st.code)
		w.buf = append(w.buf, '}')
	}
	if len(st.logs) > 0 {
		key("log")
		w.buf = append(w.buf, '[')
		for i, l := range st.logs {
			if w.max > 0 && len(w.buf) > w.max {
				return errOutputTooLarge
			}
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = append(w.buf, `{"level":`...)
			w.str(l.level)
			w.buf = append(w.buf, `,"msg":`...)
			w.str(l.msg)
			w.buf = append(w.buf, '}')
		}
		w.buf = append(w.buf, ']')
	}
	w.buf = append(w.buf, '}')
	return nil
}

// object writes a claims or metadata object in JavaScript's key order.
func (w *jsonWriter) object(o *jsObject) error {
	w.buf = append(w.buf, '{')
	first := true
	write := func(m *member) error {
		if w.max > 0 && len(w.buf) > w.max {
			return errOutputTooLarge
		}
		if !first {
			w.buf = append(w.buf, ',')
		}
		first = false
		w.str(m.key)
		w.buf = append(w.buf, ':')
		if m.json != nil {
			w.buf = append(w.buf, m.json...)
		} else {
			w.value(m.prim)
		}
		return nil
	}
	if o.indexed > 0 {
		idx := make([]int, 0, o.indexed)
		for i := range o.members {
			if o.members[i].idx != noIndex {
				idx = append(idx, i)
			}
		}
		slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(o.members[a].idx, o.members[b].idx) })
		for _, i := range idx {
			if err := write(&o.members[i]); err != nil {
				return err
			}
		}
	}
	for i := range o.members {
		if o.members[i].idx != noIndex {
			continue
		}
		if err := write(&o.members[i]); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, '}')
	return nil
}

func (w *jsonWriter) strings(s []string) {
	w.buf = append(w.buf, '[')
	for i, x := range s {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.str(x)
	}
	w.buf = append(w.buf, ']')
}
