package guard

import (
	"fmt"
	"path"
	"strings"
)

// pattern is a compiled path pattern: segments separated by "/", where "*"
// matches one segment, "**" any number of segments (zero included) and any
// other segment is a path.Match glob ("*.css", "v?") or a literal.
type pattern struct {
	raw  string
	segs []string
	glob []bool // segs[i] has glob characters
}

func compilePattern(p string) (pattern, error) {
	if !strings.HasPrefix(p, "/") {
		return pattern{}, fmt.Errorf("pattern %q must start with /", p)
	}
	pt := pattern{raw: p}
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if s == "" {
			continue
		}
		if strings.Contains(s, "**") && s != "**" {
			return pattern{}, fmt.Errorf("pattern %q: ** must be a whole segment", p)
		}
		if _, err := path.Match(s, ""); err != nil {
			return pattern{}, fmt.Errorf("pattern %q: segment %q: %w", p, s, err)
		}
		pt.segs = append(pt.segs, s)
		pt.glob = append(pt.glob, strings.ContainsAny(s, `*?[\`))
	}
	return pt, nil
}

// match reports whether the cleaned path p matches. It does not allocate.
func (pt *pattern) match(p string) bool { return pt.matchFrom(0, strings.TrimPrefix(p, "/")) }

func (pt *pattern) matchFrom(i int, rest string) bool {
	for ; i < len(pt.segs); i++ {
		s := pt.segs[i]
		if s == "**" {
			if i == len(pt.segs)-1 {
				return true
			}
			for {
				if pt.matchFrom(i+1, rest) {
					return true
				}
				j := strings.IndexByte(rest, '/')
				if j < 0 {
					return false
				}
				rest = rest[j+1:]
			}
		}
		if rest == "" {
			return false
		}
		seg := rest
		next := ""
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, next = rest[:j], rest[j+1:]
		}
		if pt.glob[i] {
			if ok, _ := path.Match(s, seg); !ok {
				return false
			}
		} else if s != seg {
			return false
		}
		rest = next
	}
	return rest == ""
}

// cleanPath makes a request path safe to match: it must be absolute,
// "/a/../b" becomes "/b", "//x" becomes "/x", a trailing slash is dropped.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	if !needsClean(p) {
		return p
	}
	return path.Clean(p)
}

// needsClean spares path.Clean's allocation on the common clean path.
func needsClean(p string) bool {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return true
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		if i+1 < len(p) && p[i+1] == '/' {
			return true
		}
		if i+1 < len(p) && p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/' || (p[i+2] == '.' && (i+3 == len(p) || p[i+3] == '/'))) {
			return true
		}
	}
	return false
}
