package hooks_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

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

// TestBodyBudget: bytes are taken from the budget as the buffer grows and
// given back by done; over budget the read is refused (503, Retry-After)
// before the body is touched, and nothing stays held.
func TestBodyBudget(t *testing.T) {
	const overhead = 8 << 10 // hooks.requestOverhead
	b := hooks.NewBodyBudget(overhead + 11)
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("0123456789"))
	body, done, err := hooks.ReadBodyBudget(httptest.NewRecorder(), r, 0, b)
	if err != nil || string(body) != "0123456789" {
		t.Fatalf("%q %v", body, err)
	}
	if b.InUse() != overhead+11 {
		t.Fatalf("held %d, want %d", b.InUse(), overhead+11)
	}
	// Spent: the next request is refused without reading its body.
	touched := false
	r2 := httptest.NewRequest(http.MethodPost, "/", nil)
	r2.ContentLength = 5
	r2.Body = io.NopCloser(readerFunc(func(p []byte) (int, error) { touched = true; return 0, io.EOF }))
	w := httptest.NewRecorder()
	_, _, err = hooks.ReadBodyBudget(w, r2, 0, b)
	if !errors.Is(err, hooks.ErrBodyBudget) || touched {
		t.Fatalf("over budget: %v (body read: %v)", err, touched)
	}
	hooks.WriteError(w, err)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || w.Header().Get("Connection") != "close" {
		t.Fatalf("over budget answers %d, Retry-After %q, Connection %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("Connection"))
	}
	if b.Refused() != 1 {
		t.Fatalf("refusals %d", b.Refused())
	}
	done()
	if b.InUse() != 0 {
		t.Fatalf("held %d after done", b.InUse())
	}
	// A body growing past what is left is refused mid-way, and what it
	// held is given back.
	b = hooks.NewBodyBudget(overhead + 6<<10)
	big := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 10<<10)))
	big.ContentLength = -1
	if _, _, err := hooks.ReadBodyBudget(httptest.NewRecorder(), big, 0, b); !errors.Is(err, hooks.ErrBodyBudget) {
		t.Fatalf("growing over budget: %v", err)
	}
	if b.InUse() != 0 {
		t.Fatalf("held %d after a refusal", b.InUse())
	}
	// A nil budget charges nothing.
	if body, done, err := hooks.ReadBodyBudget(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")), 0, nil); err != nil || string(body) != "{}" {
		t.Fatalf("nil budget: %q %v", body, err)
	} else {
		done()
	}
}

// TestBodyBudgetRefusalClosesAtOnce: over budget, a caller that declared a
// large body and stalls gets its 503 at once, and the connection is
// closed: the server does not wait to discard the rest of the body (it
// would until its read timeout, here an hour).
func TestBodyBudgetRefusalClosesAtOnce(t *testing.T) {
	b := hooks.NewBodyBudget(1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, done, err := hooks.ReadBodyBudget(w, r, 0, b)
		if err != nil {
			hooks.WriteError(w, err)
			return
		}
		done()
	}))
	srv.Config.ReadTimeout = time.Hour
	srv.Start()
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Bound only so that a regression fails instead of hanging the run.
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n{\"a\":")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
	}
	// The server closes its end: EOF, not a timeout.
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the refusal: %v, want EOF (connection closed)", err)
	}
}

// FuzzReadBodyBudget: whatever a caller sends and declares, the body read
// is exactly what was sent (or an error: too large, over budget), and the
// budget is whole again once the request is done.
func FuzzReadBodyBudget(f *testing.F) {
	f.Add([]byte(`{"a":1}`), int64(7), int64(0), int64(0))
	f.Add([]byte(`{"a":1}`), int64(-1), int64(4), int64(1<<20))
	f.Add(bytes.Repeat([]byte("x"), 9000), int64(262144), int64(0), int64(20000))
	f.Add([]byte{}, int64(0), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, body []byte, declared, limit, budget int64) {
		b := hooks.NewBodyBudget(budget)
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.ContentLength = max(declared, -1)
		got, done, err := hooks.ReadBodyBudget(httptest.NewRecorder(), r, limit, b)
		if err == nil {
			if !bytes.Equal(got, body) {
				t.Fatalf("read %d bytes, sent %d", len(got), len(body))
			}
			done()
		} else if st, _ := hooks.StatusOf(err); st != http.StatusRequestEntityTooLarge && st != http.StatusServiceUnavailable && st != http.StatusBadRequest {
			t.Fatalf("error %v answers %d", err, st)
		}
		if b.InUse() != 0 {
			t.Fatalf("%d bytes still held", b.InUse())
		}
	})
}

// BenchmarkReadBodyBudget is the body read of every signed login: a 2 KiB
// event with its declared length, charged to and given back to the budget.
func BenchmarkReadBodyBudget(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 2<<10)
	budget := hooks.NewBodyBudget(0)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		got, done, err := hooks.ReadBodyBudget(w, r, 0, budget)
		if err != nil || len(got) != len(body) {
			b.Fatal(err)
		}
		done()
	}
}
