package wasm

import (
	"bytes"
	"errors"
	"fmt"
)

// Why rule modules are instrumented
//
// wazero can stop a guest when its context is done (WithCloseOnContextDone),
// but it checks only at loop headers, and each check leaves compiled code for
// Go: measured here, that made a typical rule call 3–4× more expensive (most
// of it a goroutine per Go→wasm call). A guest without loops — deep
// recursion, or a call tree that fans out — is not checked at all: it holds
// its goroutine, and since compiled guest code cannot be preempted, it can
// also hold up the Go runtime's stop-the-world phases (garbage collection)
// for the whole process.
//
// So claimsmith instruments the module before compiling it. It adds two
// mutable globals, a fuel counter and a stop flag (exported as
// claimsmith_stop), and at every function entry and every loop header a
// check of a few instructions: decrement the fuel; when it runs out (every
// yieldEvery checks), trap if the host set the stop flag, refill the fuel,
// and execute `memory.grow 0` — a no-op that leaves compiled code for Go, so
// the goroutine can be preempted and the garbage collector is never held up
// for long. (Without that exit, a spinning guest blocks the collector's
// stop-the-world, which in turn stops the goroutine that would set the stop
// flag: the whole process freezes. A module without a memory gets an empty
// one for this.) Any unbounded execution passes through function entries or loop
// headers (straight-line code is bounded by the module's size), so a stopped
// guest traps within a bounded number of instructions. Nothing the guest can
// observe changes: it cannot name the added globals (references to globals
// past its own are rejected) and memory.grow 0 has no effect.

// Imports redirected from extism's env module to claimsmith's: go-sdk serves
// these in Go through methods that look kernel functions up by name on every
// call (a 10 KiB allocation each), and its log functions are gated by a
// process-wide level that is off by default. Ours have the same signatures
// and semantics; log lines go to the rule's trace.
var redirects = map[string]string{
	"config_get":    "config_get",
	"get_log_level": "env_get_log_level",
	"log_trace":     "env_log_trace",
	"log_debug":     "env_log_debug",
	"log_info":      "env_log_info",
	"log_warn":      "env_log_warn",
	"log_error":     "env_log_error",
}

const (
	envModule  = "extism:host/env"
	userModule = "extism:host/user"
)

// errMalformed marks a module the instrumentation could not parse.
var errMalformed = errors.New("malformed module")

// stopExport is the export name of the stop flag.
const stopExport = "claimsmith_stop"

// startExport names the module's start function once the instrumentation
// has removed the start section. wazero runs a start section inside
// instantiation, before the instance (and so its stop flag) exists: a start
// function that never returns could not be stopped and would hold its
// goroutine and a core for good. Exported instead, it runs as the first
// initialiser, under the same deadline and stop flag as every call.
const startExport = "claimsmith_start"

// yieldEvery is how many checks pass between two exits to Go.
const yieldEvery = 4096

const (
	secCustom   = 0
	secImport   = 2
	secMemory   = 5
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secCode     = 10
	secTag      = 13
	kindGlobal  = 3
	opLoop      = 0x03
	opGlobalGet = 0x23
	opGlobalSet = 0x24
)

// sectionRank orders sections as the binary format requires.
func sectionRank(id byte) int {
	switch id {
	case 1, 2, 3, 4, 5:
		return int(id)
	case secTag:
		return 6
	case secGlobal:
		return 7
	case secExport:
		return 8
	case 8, 9:
		return int(id) + 1
	case 12:
		return 11
	case secCode:
		return 12
	case 11:
		return 13
	}
	return 100
}

type section struct {
	id      byte
	payload []byte
}

// instrument returns a copy of mod with the checks described above.
func instrument(mod []byte) ([]byte, error) {
	if len(mod) < 8 || !bytes.Equal(mod[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("%w: not a WebAssembly binary (no \\0asm magic)", errMalformed)
	}
	if !bytes.Equal(mod[4:8], []byte{1, 0, 0, 0}) {
		return nil, fmt.Errorf("%w: unsupported binary version %x (want 1)", errMalformed, mod[4:8])
	}
	var secs []section
	for pos := 8; pos < len(mod); {
		id := mod[pos]
		size, n, err := readU32(mod, pos+1)
		if err != nil {
			return nil, fmt.Errorf("%w: section %d at byte %d: %v", errMalformed, id, pos, err)
		}
		start := pos + 1 + n
		end := start + int(size)
		if end > len(mod) || end < start {
			return nil, fmt.Errorf("%w: section %d at byte %d runs past the end of the file", errMalformed, id, pos)
		}
		secs = append(secs, section{id, mod[start:end]})
		pos = end
	}

	// Count globals (imported first, then defined) and find memory 0.
	var globals uint32
	mem32, haveMem := false, false
	startFn, haveStart := uint32(0), false
	for _, s := range secs {
		switch s.id {
		case secStart:
			fn, n, err := readU32(s.payload, 0)
			if err != nil || n != len(s.payload) {
				return nil, fmt.Errorf("%w: start section: bad function index", errMalformed)
			}
			startFn, haveStart = fn, true
		case secImport:
			ig, m, err := scanImports(s.payload)
			if err != nil {
				return nil, fmt.Errorf("%w: import section: %v", errMalformed, err)
			}
			globals += ig
			if m != nil && !haveMem {
				haveMem, mem32 = true, *m
			}
		case secMemory:
			count, n, err := readU32(s.payload, 0)
			if err != nil {
				return nil, fmt.Errorf("%w: memory section: %v", errMalformed, err)
			}
			if count > 0 && !haveMem && n < len(s.payload) {
				haveMem, mem32 = true, s.payload[n]&0x04 == 0
			}
		case secGlobal:
			count, _, err := readU32(s.payload, 0)
			if err != nil {
				return nil, fmt.Errorf("%w: global section: %v", errMalformed, err)
			}
			globals += count
		case secExport:
			if err := checkExports(s.payload); err != nil {
				return nil, err
			}
		}
	}
	if haveMem && !mem32 {
		return nil, fmt.Errorf("%w: 64-bit memories are not supported", errMalformed)
	}
	fuel, stop := globals, globals+1
	check := checkCode(fuel, stop)

	newGlobals := []byte{
		0x7f, 0x01, 0x41, 0x80, 0x20, 0x0b, // fuel: mut i32 = yieldEvery (4096)
		0x7f, 0x01, 0x41, 0x00, 0x0b, // stop: mut i32 = 0
	}
	stopEntry := appendName(nil, stopExport)
	stopEntry = append(stopEntry, kindGlobal)
	stopEntry = appendU32(stopEntry, stop)
	added := uint32(1)
	if haveStart {
		stopEntry = appendName(stopEntry, startExport)
		stopEntry = append(stopEntry, 0) // kind func
		stopEntry = appendU32(stopEntry, startFn)
		added++
	}

	out := make([]byte, 0, len(mod)+len(mod)/8+64)
	out = append(out, mod[:8]...)
	emit := func(id byte, payload []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(payload)))
		out = append(out, payload...)
	}
	// A module without memory gets an empty one (0 pages, no growth), so
	// that the yield's memory.grow 0 has a memory to name.
	addedMemory := haveMem
	addedGlobals, addedExport := false, false
	for _, s := range secs {
		rank := sectionRank(s.id)
		if s.id != secCustom {
			if !addedMemory && rank > sectionRank(secMemory) {
				emit(secMemory, []byte{0x01, 0x01, 0x00, 0x00})
				addedMemory = true
			}
			if !addedGlobals && rank > sectionRank(secGlobal) {
				emit(secGlobal, append(appendU32(nil, 2), newGlobals...))
				addedGlobals = true
			}
			if !addedExport && rank > sectionRank(secExport) {
				emit(secExport, append(appendU32(nil, added), stopEntry...))
				addedExport = true
			}
		}
		switch s.id {
		case secGlobal:
			count, n, _ := readU32(s.payload, 0)
			p := appendU32(nil, count+2)
			p = append(p, s.payload[n:]...)
			emit(secGlobal, append(p, newGlobals...))
			addedGlobals = true
		case secImport:
			p, err := redirectImports(s.payload)
			if err != nil {
				return nil, fmt.Errorf("%w: import section: %v", errMalformed, err)
			}
			emit(secImport, p)
		case secExport:
			count, n, _ := readU32(s.payload, 0)
			p := appendU32(nil, count+added)
			p = append(p, s.payload[n:]...)
			emit(secExport, append(p, stopEntry...))
			addedExport = true
		case secCode:
			code, err := instrumentCode(s.payload, check, globals)
			if err != nil {
				return nil, fmt.Errorf("%w: code section: %v", errMalformed, err)
			}
			emit(secCode, code)
		case secStart:
			// dropped: runs as the export startExport (see there)
		default:
			emit(s.id, s.payload)
		}
	}
	if !addedMemory {
		emit(secMemory, []byte{0x01, 0x01, 0x00, 0x00})
	}
	if !addedGlobals {
		emit(secGlobal, append(appendU32(nil, 2), newGlobals...))
	}
	if !addedExport {
		emit(secExport, append(appendU32(nil, added), stopEntry...))
	}
	return out, nil
}

// checkCode is the check inserted at function entries and loop headers.
func checkCode(fuel, stop uint32) []byte {
	get := func(b []byte, g uint32) []byte { return appendU32(append(b, opGlobalGet), g) }
	set := func(b []byte, g uint32) []byte { return appendU32(append(b, opGlobalSet), g) }
	var c []byte
	c = get(c, fuel)
	c = append(c, 0x45, 0x04, 0x40) // i32.eqz; if
	c = get(c, stop)
	c = append(c, 0x04, 0x40, 0x00, 0x0b) // if unreachable end
	c = append(c, 0x41, 0x80, 0x20)       // i32.const 4096
	c = set(c, fuel)
	c = append(c, 0x41, 0x00, 0x40, 0x00, 0x1a) // memory.grow 0; drop
	c = append(c, 0x0b)                         // end
	c = get(c, fuel)
	c = append(c, 0x41, 0x01, 0x6b) // i32.const 1; i32.sub
	return set(c, fuel)
}

// scanImports counts imported globals and reports whether the first
// imported memory (memory 0) is 32-bit (nil when no memory is imported).
func scanImports(p []byte) (globals uint32, mem32 *bool, err error) {
	count, pos, err := readU32(p, 0)
	if err != nil {
		return 0, nil, err
	}
	for i := uint32(0); i < count; i++ {
		for k := 0; k < 2; k++ { // module and field names
			n, m, err := readU32(p, pos)
			if err != nil {
				return 0, nil, fmt.Errorf("import %d: %v", i, err)
			}
			pos += m + int(n)
		}
		if pos >= len(p) {
			return 0, nil, fmt.Errorf("import %d: truncated", i)
		}
		kind := p[pos]
		pos++
		var n int
		switch kind {
		case 0: // func: type index
			n, err = skipLEB(p, pos, 5)
		case 1: // table: reftype, limits
			n, err = skipRefType(p, pos)
			if err == nil {
				var m int
				m, err = skipLimits(p, pos+n)
				n += m
			}
		case 2: // memory: limits
			if mem32 == nil && pos < len(p) {
				b := p[pos]&0x04 == 0
				mem32 = &b
			}
			n, err = skipLimits(p, pos)
		case 3: // global: valtype, mutability
			globals++
			n, err = skipRefType(p, pos)
			n++
		case 4: // tag: attribute, type index
			n, err = skipLEB(p, pos+1, 5)
			n++
		default:
			return 0, nil, fmt.Errorf("import %d: unknown kind %d", i, kind)
		}
		if err != nil {
			return 0, nil, fmt.Errorf("import %d: %v", i, err)
		}
		pos += n
	}
	return globals, mem32, nil
}

// redirectImports rewrites the import section with the redirects applied.
// Only names change, so every index stays the same.
func redirectImports(p []byte) ([]byte, error) {
	count, pos, err := readU32(p, 0)
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(p)+64), count)
	for i := uint32(0); i < count; i++ {
		var names [2]string
		for k := range names {
			n, m, err := readU32(p, pos)
			if err != nil || pos+m+int(n) > len(p) {
				return nil, fmt.Errorf("import %d: bad name", i)
			}
			names[k] = string(p[pos+m : pos+m+int(n)])
			pos += m + int(n)
		}
		start := pos // the import's description, copied as it is
		if pos >= len(p) {
			return nil, fmt.Errorf("import %d: truncated", i)
		}
		var n int
		switch kind := p[pos]; kind {
		case 0:
			n, err = skipLEB(p, pos+1, 5)
		case 1:
			n, err = skipRefType(p, pos+1)
			if err == nil {
				var m int
				m, err = skipLimits(p, pos+1+n)
				n += m
			}
		case 2:
			n, err = skipLimits(p, pos+1)
		case 3:
			n, err = skipRefType(p, pos+1)
			n++
		case 4:
			n, err = skipLEB(p, pos+2, 5)
			n++
		default:
			return nil, fmt.Errorf("import %d: unknown kind %d", i, kind)
		}
		if err != nil {
			return nil, fmt.Errorf("import %d: %v", i, err)
		}
		pos += 1 + n
		if to, ok := redirects[names[1]]; ok && names[0] == envModule && p[start] == 0 {
			names = [2]string{userModule, to}
		}
		out = appendName(out, names[0])
		out = appendName(out, names[1])
		out = append(out, p[start:pos]...)
	}
	if pos != len(p) {
		return nil, fmt.Errorf("%d trailing bytes", len(p)-pos)
	}
	return out, nil
}

func checkExports(p []byte) error {
	count, pos, err := readU32(p, 0)
	if err != nil {
		return fmt.Errorf("%w: export section: %v", errMalformed, err)
	}
	for i := uint32(0); i < count; i++ {
		n, m, err := readU32(p, pos)
		if err != nil || pos+m+int(n) > len(p) {
			return fmt.Errorf("%w: export %d: bad name", errMalformed, i)
		}
		if name := string(p[pos+m : pos+m+int(n)]); name == stopExport || name == startExport {
			return fmt.Errorf("%w: the module exports %q, a name claimsmith reserves", errMalformed, name)
		}
		pos += m + int(n) + 1
		k, err := skipLEB(p, pos, 5)
		if err != nil {
			return fmt.Errorf("%w: export %d: %v", errMalformed, i, err)
		}
		pos += k
	}
	return nil
}

func skipRefType(p []byte, pos int) (int, error) {
	if pos >= len(p) {
		return 0, errors.New("truncated value type")
	}
	if p[pos] == 0x63 || p[pos] == 0x64 {
		n, err := skipLEB(p, pos+1, 5)
		return n + 1, err
	}
	return 1, nil
}

func skipLimits(p []byte, pos int) (int, error) {
	if pos >= len(p) {
		return 0, errors.New("truncated limits")
	}
	flags := p[pos]
	n := 1
	m, err := skipLEB(p, pos+n, 10)
	if err != nil {
		return 0, err
	}
	n += m
	if flags&1 != 0 {
		m, err := skipLEB(p, pos+n, 10)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// instrumentCode rewrites a code section payload: a vector of function bodies,
// each its size, its local declarations and its expression.
func instrumentCode(sec, check []byte, globals uint32) ([]byte, error) {
	count, n, err := readU32(sec, 0)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(sec)+len(sec)/4)
	out = appendU32(out, count)
	pos := n
	var body []byte
	for i := uint32(0); i < count; i++ {
		size, n, err := readU32(sec, pos)
		if err != nil {
			return nil, fmt.Errorf("function body %d: %v", i, err)
		}
		start := pos + n
		end := start + int(size)
		if end > len(sec) || end < start {
			return nil, fmt.Errorf("function body %d runs past the section", i)
		}
		body, err = instrumentBody(body[:0], sec[start:end], check, globals)
		if err != nil {
			return nil, fmt.Errorf("function body %d: %v", i, err)
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		pos = end
	}
	if pos != len(sec) {
		return nil, fmt.Errorf("%d trailing bytes after %d function bodies", len(sec)-pos, count)
	}
	return out, nil
}

// instrumentBody copies one function body, inserting check after the local
// declarations and after every loop's block type.
func instrumentBody(dst, body, check []byte, globals uint32) ([]byte, error) {
	pos, err := skipLocals(body)
	if err != nil {
		return nil, err
	}
	dst = append(dst, body[:pos]...)
	dst = append(dst, check...)
	from := pos
	for pos < len(body) {
		op := body[pos]
		at := pos
		n, err := immediates(body, pos+1, op)
		if err != nil {
			return nil, fmt.Errorf("instruction 0x%02x at body offset %d: %v", op, at, err)
		}
		pos += 1 + n
		if op == opGlobalGet || op == opGlobalSet {
			g, _, _ := readU32(body, at+1)
			if g >= globals {
				return nil, fmt.Errorf("instruction at body offset %d uses global %d, but the module has %d", at, g, globals)
			}
		}
		if op == opLoop {
			dst = append(dst, body[from:pos]...)
			dst = append(dst, check...)
			from = pos
		}
	}
	return append(dst, body[from:]...), nil
}

// immediates returns the size of the immediates of opcode op, which start at
// pos. It knows the MVP, sign extension, saturating conversions, bulk
// memory, reference types, multi-value, tail calls, SIMD, threads and
// exception handling — what wazero can run. Anything else is an error.
func immediates(b []byte, pos int, op byte) (int, error) {
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04 || op == 0x06: // block loop if try
		return skipBlockType(b, pos)
	case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x18: // catch throw rethrow delegate
		return skipLEB(b, pos, 5)
	case op <= 0x01 || op == 0x05 || op == 0x0a || op == 0x0b || op == 0x0f || op == 0x19 || op == 0x1a || op == 0x1b:
		return 0, nil
	case op == 0x0c || op == 0x0d || (op >= 0x10 && op <= 0x15 && op != 0x11 && op != 0x13):
		return skipLEB(b, pos, 5) // br br_if call return_call call_ref return_call_ref
	case op == 0x11 || op == 0x13: // call_indirect return_call_indirect
		return skipN(b, pos, 2)
	case op == 0x0e: // br_table
		count, n, err := readU32(b, pos)
		if err != nil {
			return 0, err
		}
		m, err := skipN(b, pos+n, int(count)+1)
		return n + m, err
	case op == 0x1c: // select t*
		count, n, err := readU32(b, pos)
		if err != nil {
			return 0, err
		}
		for i := uint32(0); i < count; i++ {
			m, err := skipRefType(b, pos+n)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	case op == 0x1f: // try_table
		n, err := skipBlockType(b, pos)
		if err != nil {
			return 0, err
		}
		count, m, err := readU32(b, pos+n)
		if err != nil {
			return 0, err
		}
		n += m
		for i := uint32(0); i < count; i++ {
			if pos+n >= len(b) {
				return 0, errors.New("truncated catch clause")
			}
			kind := b[pos+n]
			n++
			args := 1
			if kind <= 1 {
				args = 2
			}
			m, err := skipN(b, pos+n, args)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	case op >= 0x20 && op <= 0x26: // locals, globals, table.get/set
		return skipLEB(b, pos, 5)
	case op >= 0x28 && op <= 0x3e: // loads and stores
		return skipMemArg(b, pos)
	case op == 0x3f || op == 0x40: // memory.size/grow
		return skipLEB(b, pos, 5)
	case op == 0x41:
		return skipLEB(b, pos, 5)
	case op == 0x42:
		return skipLEB(b, pos, 10)
	case op == 0x43:
		return fixed(b, pos, 4)
	case op == 0x44:
		return fixed(b, pos, 8)
	case op >= 0x45 && op <= 0xc4: // numeric
		return 0, nil
	case op == 0xd0: // ref.null heaptype
		return skipLEB(b, pos, 5)
	case op == 0xd1 || op == 0xd3 || op == 0xd4:
		return 0, nil
	case op == 0xd2 || op == 0xd5 || op == 0xd6: // ref.func br_on_null br_on_non_null
		return skipLEB(b, pos, 5)
	case op == 0xfc:
		return prefixedFC(b, pos)
	case op == 0xfd:
		return prefixedFD(b, pos)
	case op == 0xfe:
		return prefixedFE(b, pos)
	}
	return 0, errors.New("unknown or unsupported opcode")
}

func prefixedFC(b []byte, pos int) (int, error) {
	sub, n, err := readU32(b, pos)
	if err != nil {
		return 0, err
	}
	var m int
	switch {
	case sub <= 7:
	case sub == 9 || sub == 11 || sub == 13 || (sub >= 15 && sub <= 17):
		m, err = skipN(b, pos+n, 1)
	case sub == 8 || sub == 10 || sub == 12 || sub == 14:
		m, err = skipN(b, pos+n, 2)
	default:
		return 0, fmt.Errorf("unknown 0xfc instruction %d", sub)
	}
	return n + m, err
}

func prefixedFD(b []byte, pos int) (int, error) {
	sub, n, err := readU32(b, pos)
	if err != nil {
		return 0, err
	}
	var m int
	switch {
	case sub <= 11 || sub == 92 || sub == 93:
		m, err = skipMemArg(b, pos+n)
	case sub == 12 || sub == 13:
		m, err = fixed(b, pos+n, 16)
	case sub >= 21 && sub <= 34:
		m, err = fixed(b, pos+n, 1)
	case sub >= 84 && sub <= 91:
		m, err = skipMemArg(b, pos+n)
		if err == nil {
			_, err = fixed(b, pos+n+m, 1)
			m++
		}
	}
	return n + m, err
}

func prefixedFE(b []byte, pos int) (int, error) {
	sub, n, err := readU32(b, pos)
	if err != nil {
		return 0, err
	}
	if sub == 3 { // atomic.fence
		m, err := fixed(b, pos+n, 1)
		return n + m, err
	}
	m, err := skipMemArg(b, pos+n)
	return n + m, err
}

func skipBlockType(b []byte, pos int) (int, error) {
	if pos >= len(b) {
		return 0, errors.New("truncated block type")
	}
	if b[pos] == 0x63 || b[pos] == 0x64 {
		n, err := skipLEB(b, pos+1, 5)
		return n + 1, err
	}
	return skipLEB(b, pos, 5) // 0x40, a value type, or an s33 type index
}

func skipMemArg(b []byte, pos int) (int, error) {
	align, n, err := readU32(b, pos)
	if err != nil {
		return 0, err
	}
	if align&0x40 != 0 { // multi-memory: a memory index follows
		m, err := skipLEB(b, pos+n, 5)
		if err != nil {
			return 0, err
		}
		n += m
	}
	m, err := skipLEB(b, pos+n, 10)
	return n + m, err
}

func skipN(b []byte, pos, count int) (int, error) {
	n := 0
	for i := 0; i < count; i++ {
		m, err := skipLEB(b, pos+n, 10)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

func fixed(b []byte, pos, n int) (int, error) {
	if pos+n > len(b) {
		return 0, errors.New("truncated immediate")
	}
	return n, nil
}

// skipLocals returns the offset of a function body's expression.
func skipLocals(body []byte) (int, error) {
	groups, pos, err := readU32(body, 0)
	if err != nil {
		return 0, fmt.Errorf("locals: %v", err)
	}
	for g := uint32(0); g < groups; g++ {
		_, n, err := readU32(body, pos)
		if err != nil {
			return 0, fmt.Errorf("locals group %d: %v", g, err)
		}
		pos += n
		m, err := skipRefType(body, pos)
		if err != nil {
			return 0, fmt.Errorf("locals group %d: %v", g, err)
		}
		pos += m
	}
	return pos, nil
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

func readU32(b []byte, pos int) (uint32, int, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		if pos+i >= len(b) {
			return 0, 0, errors.New("truncated LEB128 number")
		}
		c := b[pos+i]
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i == 4 && c > 0x0f {
				return 0, 0, errors.New("LEB128 number overflows 32 bits")
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("LEB128 number longer than 5 bytes")
}

func skipLEB(b []byte, pos, max int) (int, error) {
	for i := 0; i < max; i++ {
		if pos+i >= len(b) {
			return 0, errors.New("truncated LEB128 number")
		}
		if b[pos+i]&0x80 == 0 {
			return i + 1, nil
		}
	}
	return 0, errors.New("LEB128 number too long")
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}
