package wasm

import (
	"bytes"
	"errors"
	"fmt"
)

// wazero, configured to close a module when its context is done, checks for
// that only at loop headers. A guest without loops — deep recursion, or a
// call tree that fans out (f calls g twice, g calls h twice, …) — runs on
// untouched until it returns, holding its goroutine and, because compiled
// guest code cannot be preempted, able to stall the Go runtime's
// stop-the-world phases. addEntryChecks closes that gap: it prepends an empty
// `loop … end` block to every function body, so wazero's check also runs at
// every function entry. Any unbounded execution then passes a check
// within a bounded number of instructions (straight-line code is bounded by
// the module's size). The cost is one check per guest function call; Go
// guests already pay it, since every Go function body is a loop.

// errMalformed marks a module the instrumentation could not parse.
var errMalformed = errors.New("malformed module")

const (
	sectionCode   = 10
	opLoop        = 0x03
	opEnd         = 0x0b
	blockTypeVoid = 0x40
)

// addEntryChecks returns a copy of the module with the entry block added to
// every function body. Other sections are copied byte for byte.
func addEntryChecks(mod []byte) ([]byte, error) {
	if len(mod) < 8 || !bytes.Equal(mod[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("%w: not a WebAssembly binary (no \\0asm magic)", errMalformed)
	}
	if !bytes.Equal(mod[4:8], []byte{1, 0, 0, 0}) {
		return nil, fmt.Errorf("%w: unsupported binary version %x (want 1)", errMalformed, mod[4:8])
	}
	out := make([]byte, 0, len(mod)+len(mod)/16)
	out = append(out, mod[:8]...)
	pos := 8
	for pos < len(mod) {
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
		if id != sectionCode {
			out = append(out, mod[pos:end]...)
			pos = end
			continue
		}
		code, err := instrumentCode(mod[start:end])
		if err != nil {
			return nil, fmt.Errorf("%w: code section: %v", errMalformed, err)
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(code)))
		out = append(out, code...)
		pos = end
	}
	return out, nil
}

// instrumentCode rewrites a code section payload: a vector of function bodies,
// each its size, its local declarations and its expression.
func instrumentCode(sec []byte) ([]byte, error) {
	count, n, err := readU32(sec, 0)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(sec)+int(count)*4)
	out = appendU32(out, count)
	pos := n
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
		body := sec[start:end]
		localsEnd, err := skipLocals(body)
		if err != nil {
			return nil, fmt.Errorf("function body %d: %v", i, err)
		}
		out = appendU32(out, uint32(len(body)+3))
		out = append(out, body[:localsEnd]...)
		out = append(out, opLoop, blockTypeVoid, opEnd)
		out = append(out, body[localsEnd:]...)
		pos = end
	}
	if pos != len(sec) {
		return nil, fmt.Errorf("%d trailing bytes after %d function bodies", len(sec)-pos, count)
	}
	return out, nil
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
		if pos >= len(body) {
			return 0, fmt.Errorf("locals group %d: missing value type", g)
		}
		vt := body[pos]
		pos++
		// Typed references (GC / function-references proposals) carry a heap type.
		if vt == 0x63 || vt == 0x64 {
			n, err := skipLEB(body, pos, 5)
			if err != nil {
				return 0, fmt.Errorf("locals group %d: heap type: %v", g, err)
			}
			pos += n
		}
	}
	return pos, nil
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
