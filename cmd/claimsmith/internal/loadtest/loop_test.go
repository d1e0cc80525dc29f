//go:build linux

package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoopSpeaksHTTP: what the event loop sends arrives as net/http's
// client would send it (method, path under the base URL, headers, body),
// and every framing a server may answer with is read to its end: a
// Content-Length, chunks (a handler that flushes), an answer without
// body (204), and a server that closes the connection after answering.
func TestLoopSpeaksHTTP(t *testing.T) {
	var bad atomic.Value
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/base/"+strings.TrimPrefix(r.URL.Path, "/base/") ||
			r.Header.Get("Authorization") != "Bearer k" || string(body) != `{"a":1}` || r.ContentLength != int64(len(body)) {
			bad.Store(r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization") + " " + string(body))
		}
		switch r.URL.Path {
		case "/base/chunked":
			w.WriteHeader(http.StatusOK)
			for range 3 {
				_, _ = w.Write(bytes.Repeat([]byte("x"), 3000))
				w.(http.Flusher).Flush()
			}
		case "/base/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/base/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()
	req := func(kind, path string, status int) *Request {
		return &Request{Kind: kind, Method: http.MethodPost, Path: path, Header: http.Header{"Authorization": {"Bearer k"}},
			Body: []byte(`{"a":1}`), Expect: []int{status}}
	}
	mix, err := NewWeighted(map[string]int{"plain": 1, "chunked": 1, "empty": 1, "close": 1}, map[string][]*Request{
		"plain":   {req("plain", "/plain", 200)},
		"chunked": {req("chunked", "/chunked", 200)},
		"empty":   {req("empty", "/empty", 204)},
		"close":   {req("close", "/close", 200)},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{BaseURL: srv.URL + "/base", Rate: 400, Duration: 500 * time.Millisecond, Seed: 1}, mix)
	if err != nil {
		t.Fatal(err)
	}
	if v := bad.Load(); v != nil {
		t.Fatalf("the server saw a request unlike net/http's: %v", v)
	}
	if rep.Sent != 200 || rep.Errors != 0 || int64(rep.Sent) != n.Load() {
		t.Fatalf("sent %d, errors %d (%v), server saw %d", rep.Sent, rep.Errors, rep.FirstErrors, n.Load())
	}
	for _, k := range []string{"plain", "chunked", "empty", "close"} {
		if rep.ByKind[k].Count == 0 {
			t.Errorf("no %s answers in %+v", k, rep.ByKind)
		}
	}
}

// TestLoopTransportErrors: an answer that never comes is a timeout error,
// a connection the server drops mid-request an error; both are samples
// with the time they took, and the run goes on with new connections.
func TestLoopTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					switch n.Add(1) % 3 {
					case 0: // never answer: the client's timeout ends it
						time.Sleep(time.Second)
						return
					case 1: // drop the connection
						return
					default:
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					}
				}
			}(c)
		}
	}()
	mix, _ := NewWeighted(map[string]int{"x": 1}, map[string][]*Request{"x": {{Kind: "x", Method: "GET", Path: "/", Expect: []int{200}}}})
	rep, err := Run(context.Background(), Options{BaseURL: "http://" + ln.Addr().String(), Rate: 100, Duration: 300 * time.Millisecond,
		Timeout: 100 * time.Millisecond, Concurrency: 64}, mix)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 30 {
		t.Fatalf("%d samples, want 30 (%d dropped)", rep.Sent, rep.Dropped)
	}
	var timeouts, dropped, ok int
	for _, s := range rep.Samples {
		switch {
		case s.OK:
			ok++
		case strings.Contains(s.Err, "no answer within"):
			timeouts++
			if s.Latency < 100*time.Millisecond {
				t.Errorf("a timeout after %s, before the 100ms timeout", s.Latency)
			}
		case s.Err != "":
			dropped++
		}
	}
	if timeouts == 0 || dropped == 0 || ok == 0 || timeouts+dropped+ok != 30 {
		t.Fatalf("ok %d, timeouts %d, dropped connections %d; errors %v", ok, timeouts, dropped, rep.FirstErrors)
	}
}

// TestLoopCancel: a cancelled context stops the sends and ends the run.
func TestLoopCancel(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent.Add(1) }))
	srv.Start()
	defer srv.Close()
	mix, _ := NewWeighted(map[string]int{"x": 1}, map[string][]*Request{"x": {{Kind: "x", Method: "GET", Path: "/", Expect: []int{200}}}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for sent.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	rep, err := Run(ctx, Options{BaseURL: srv.URL, Rate: 100, Duration: time.Hour}, mix)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent >= 360000 {
		t.Fatalf("the run did not stop: %d sent", rep.Sent)
	}
}

// FuzzParseAnswer holds the loop's answer parser to net/http's reader: an
// answer it calls complete, net/http reads whole with the same status,
// and it never reads past what it was given.
func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nuntil close"), true)
	f.Add([]byte("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, b []byte, eof bool) {
		status, end, _, err := parseAnswer(b, eof, false)
		if err != nil || end < 0 {
			return
		}
		if end > len(b) {
			t.Fatalf("end %d past %d bytes", end, len(b))
		}
		br := bufio.NewReader(bytes.NewReader(b[:end]))
		resp, rerr := http.ReadResponse(br, nil)
		for rerr == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 {
			resp, rerr = http.ReadResponse(br, nil) // interim answers, as the loop skips them
		}
		if rerr != nil {
			// net/http is stricter about header syntax than the loop,
			// which only needs the framing.
			return
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil && resp.StatusCode == status {
			t.Fatalf("answer framed complete (end %d) but net/http's body read fails: %v\n%q", end, err, b[:end])
		}
		if resp.StatusCode != status {
			t.Fatalf("status %d, net/http read %d\n%q", status, resp.StatusCode, b[:end])
		}
	})
}
