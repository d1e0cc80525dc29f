package redis

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// foldKey maps s to a key such that foldKey(a) == foldKey(b) exactly when
// strings.EqualFold(a, b): every rune becomes the smallest rune of its simple
// case-folding orbit. Group names are unique case-insensitively (the
// extension's rule), and the name index must agree with EqualFold.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r == utf8.RuneError {
			b.WriteRune(r)
			continue
		}
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		b.WriteRune(m)
	}
	return b.String()
}
