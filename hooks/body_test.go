package hooks_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	cs "github.com/claimsmith/claimsmith/runtime"
)

// TestReadBody: the one body limit. A declared length over it is refused
// before anything is read, a body that turns out longer is cut at the
// limit, and a body of exactly the limit is read whole.
func TestReadBody(t *testing.T) {
	read := func(body io.Reader, declared int64, limit int64) ([]byte, bool, error) {
		r := httptest.NewRequest(http.MethodPost, "/", body)
		r.ContentLength = declared
		touched := false
		r.Body = io.NopCloser(readerFunc(func(p []byte) (int, error) { touched = true; return body.Read(p) }))
		b, err := hooks.ReadBody(httptest.NewRecorder(), r, limit)
		return b, touched, err
	}
	if b, _, err := read(strings.NewReader("0123456789"), 10, 10); err != nil || string(b) != "0123456789" {
		t.Fatalf("at the limit: %q %v", b, err)
	}
	if _, touched, err := read(strings.NewReader("0123456789A"), 11, 10); !errors.Is(err, cs.ErrTooLarge) || touched {
		t.Fatalf("declared over the limit: %v (body read: %v)", err, touched)
	}
	_, _, err := read(strings.NewReader("0123456789A"), -1, 10)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		t.Fatalf("streamed over the limit: %v", err)
	}
	if st, _ := hooks.StatusOf(err); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("streamed over the limit answers %d", st)
	}
	big := bytes.Repeat([]byte("x"), 200<<10)
	if b, _, err := read(bytes.NewReader(big), -1, 0); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("a large body under the default limit: %d bytes, %v", len(b), err)
	}
}

// TestReadBodyDoesNotTrustContentLength: memory follows the bytes that
// arrive, not the length a caller declares (a regression test: the body
// used to be allocated at Content-Length at once).
func TestReadBodyDoesNotTrustContentLength(t *testing.T) {
	const declared, runs = 250 << 10, 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a":1}`))
		r.ContentLength = declared // claimed, never sent
		if b, err := hooks.ReadBody(httptest.NewRecorder(), r, 0); err != nil || string(b) != `{"a":1}` {
			t.Fatalf("%q %v", b, err)
		}
	}
	runtime.ReadMemStats(&after)
	// 20 runs at the declared size would be 5 MiB; reading what arrives
	// stays far below 1 MiB (generous for the test's own allocations).
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("%d runs allocated %d bytes", runs, got)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
