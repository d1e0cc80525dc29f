package hooks

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// DefaultMaxBody is the body limit of a request when its route or handler
// sets none. A login event with a generous app_metadata is a few KiB;
// Hydra's token hook body with a large consent session stays well under it.
const DefaultMaxBody = 256 << 10

// firstReadSize bounds the buffer a body is first read into; it grows as
// the bytes arrive. A declared Content-Length only ever makes it smaller (a
// caller may declare a length it never sends, so memory beyond this is
// spent only on bytes received).
const firstReadSize = 4 << 10

// LimitBody is the one place a request body limit is enforced: a declared
// Content-Length over limit is refused before anything is read or
// allocated, and the body is capped at limit bytes for whoever reads it
// (reading past it fails with *http.MaxBytesError, 413 in StatusOf).
// limit <= 0 means DefaultMaxBody. The server's routes, the reloadable hook
// routes and ReadBody all call it.
func LimitBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if r.ContentLength > limit {
		return fmt.Errorf("%w: request body of %d bytes exceeds the limit of %d", runtime.ErrTooLarge, r.ContentLength, limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return nil
}

// ReadBody reads the request body under LimitBody(limit), incrementally:
// memory grows with the bytes received, whatever Content-Length says.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := LimitBody(w, r, limit); err != nil {
		return nil, err
	}
	first := int64(firstReadSize)
	if r.ContentLength >= 0 && r.ContentLength < first {
		first = r.ContentLength + 1 // room to read the EOF without growing
	}
	buf := make([]byte, 0, first)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, fmt.Errorf("request body exceeds the limit of %d bytes: %w", mbe.Limit, err)
			}
			return nil, fmt.Errorf("%w: reading request body: %v", runtime.ErrInvalid, err)
		}
	}
}

// RequireJSON refuses a request whose Content-Type is not application/json
// in UTF-8. A charset parameter is allowed only when it says UTF-8 (Hydra
// sends "application/json; charset=UTF-8"): JSON is UTF-8 (RFC 8259 §8.1),
// and a body declared as UTF-16 would otherwise be parsed as UTF-8 and
// mean something other than what its sender wrote.
func RequireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q, want application/json", ErrUnsupportedMediaType, ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fmt.Errorf("%w: Content-Type %q: charset %q, want UTF-8", ErrUnsupportedMediaType, ct, truncateParam(cs))
	}
	return nil
}

// truncateParam keeps a caller's parameter short in the error text.
func truncateParam(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
