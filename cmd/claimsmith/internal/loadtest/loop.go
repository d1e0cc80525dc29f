//go:build linux

package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	goruntime "runtime"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// runLoop is Run's generator for plain http on Linux: one OS thread does
// all of it, with no goroutine per request and no net/http client. It
// sends each request when its time comes and reads every answer from one
// epoll loop, sleeping in epoll_pwait2 until the next send is due or an
// answer arrives (timer slack 1 ns).
//
// Why: the net/http generator hands each request between three
// goroutines and waits on Go timers; an idle Go process wakes from a
// timer up to about a millisecond late, and a thread sleeping in
// nanosleep kept the process's only P, so answers waited to be read. On
// these machines it added p50 200 µs to every request (measured against
// a server that answers at once), all counted as the server's latency.
// The loop leaves on time to within the kernel's wake-up (tens of µs) and
// costs a few µs of CPU per request. It does not spin: on a VM a busy
// vCPU competes with its sibling on the host (a thread spinning on CPU 1
// made a thread on CPU 0 lose 15 % of its time in gaps of up to 20 ms),
// so a spinning generator slows the server it measures.
//
// It speaks plain HTTP/1.1 with keep-alive, one request at a time per
// connection (no pipelining): the request bytes are built once per
// prepared Request, the answer's status line and framing (Content-Length,
// chunked, or until close) are parsed, the body discarded. errNoLoop: not
// plain http (https goes through net/http).
func runLoop(ctx context.Context, opts Options, mix Mix, conc int, timeout time.Duration) (*Report, error) {
	u, err := url.Parse(opts.BaseURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, errNoLoop
	}
	hostPort := u.Host
	if u.Port() == "" {
		hostPort = net.JoinHostPort(u.Hostname(), "80")
	}
	addr, err := net.ResolveTCPAddr("tcp", hostPort)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	base := u.EscapedPath()
	if base == "/" {
		base = ""
	}

	// Everything below runs on this thread: locked, so the runtime cannot
	// move the loop to a thread that is asleep.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	// Timer slack (50 µs by default) would let every wake-up come late.
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)

	p := &poller{addr: addr, host: u.Host, base: base, timeout: timeout, conc: conc,
		built: map[*Request][]byte{}}
	if p.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("loadtest: epoll_create1: %w", err)
	}
	defer p.closeAll()
	// Connections for the expected concurrency are opened before the
	// clock starts, so no scheduled send waits for a connect.
	for range min(conc, 16+int(opts.Rate/100)) {
		c, err := p.dial()
		if err != nil {
			return nil, err
		}
		p.idle = append(p.idle, c)
	}

	total := int(opts.Rate * opts.Duration.Seconds())
	interval := float64(time.Second) / opts.Rate
	p.samples = make([]Sample, 0, total)
	dropped := 0
	rng := newRand(opts.Seed)
	events := make([]unix.EpollEvent, 64)
	start := time.Now()
	p.start = start
	lastCheck := start
	next := 0
	for {
		now := time.Now()
		for next < total {
			due := start.Add(time.Duration(float64(next) * interval))
			if now.Before(due) {
				break
			}
			req := mix.Next(rng)
			next++
			c, err := p.take()
			if err != nil {
				// The server refused a connection: a failed request,
				// not a dropped one.
				p.samples = append(p.samples, Sample{At: due.Sub(start), Latency: time.Since(due), Kind: req.Kind, Err: err.Error()})
				continue
			}
			if c == nil {
				dropped++
				continue
			}
			p.send(c, req, due)
			now = time.Now()
		}
		// Sleep in epoll until the next send is due (or an answer comes),
		// at most a millisecond (for the context and timeouts).
		wait := time.Millisecond
		if next < total {
			wait = min(wait, time.Until(start.Add(time.Duration(float64(next)*interval))))
		}
		n, err := epollWait(p.ep, events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("loadtest: epoll_wait: %w", err)
		}
		for _, ev := range events[:max(n, 0)] {
			c := p.byFD[int(ev.Fd)]
			if c == nil {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 && len(c.out) > 0 {
				p.flush(c)
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP|unix.EPOLLRDHUP) != 0 && p.byFD[c.fd] == c {
				p.receive(c)
			}
		}
		if now.Sub(lastCheck) >= time.Millisecond {
			lastCheck = now
			if ctx.Err() != nil && next < total {
				next = total // stop sending; the ones in flight fail below
			}
			for _, c := range p.busy() {
				switch {
				case ctx.Err() != nil:
					p.fail(c, ctx.Err().Error())
				case now.Sub(c.sent) > timeout:
					p.fail(c, fmt.Sprintf("no answer within %s", timeout))
				}
			}
		}
		if next >= total && p.inFlight == 0 {
			break
		}
	}
	return newReport(opts, p.samples, dropped, time.Since(start)), nil
}

type poller struct {
	ep      int
	addr    *net.TCPAddr
	host    string
	base    string
	timeout time.Duration
	conc    int

	byFD     map[int]*pconn
	idle     []*pconn
	inFlight int
	built    map[*Request][]byte
	start    time.Time
	samples  []Sample
}

// pconn is one keep-alive connection and the request it carries.
type pconn struct {
	fd  int
	out []byte // request bytes not yet written
	in  []byte // answer bytes read so far

	req       *Request
	scheduled time.Time
	sent      time.Time
	busy      bool
	epollOut  bool // EPOLLOUT is requested (a partial write)
}

func (p *poller) dial() (*pconn, error) {
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if ip4 := p.addr.IP.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: p.addr.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: p.addr.Port}
		copy(sa6.Addr[:], p.addr.IP.To16())
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loadtest: socket: %w", err)
	}
	// A blocking connect: on the loopback or a LAN it takes microseconds,
	// and it happens before the clock starts unless more connections are
	// needed than were opened.
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("loadtest: connect %s: %w", p.addr, err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("loadtest: epoll_ctl: %w", err)
	}
	c := &pconn{fd: fd, in: make([]byte, 0, 16<<10)}
	if p.byFD == nil {
		p.byFD = map[int]*pconn{}
	}
	p.byFD[fd] = c
	return c, nil
}

// take returns an idle connection, opening one while fewer than conc
// are open; nil when every connection is busy (the request is dropped).
func (p *poller) take() (*pconn, error) {
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return c, nil
	}
	if len(p.byFD) >= p.conc {
		return nil, nil
	}
	return p.dial()
}

func (p *poller) send(c *pconn, r *Request, due time.Time) {
	c.req, c.scheduled, c.busy = r, due, true
	p.inFlight++
	c.sent = time.Now()
	if r.Sign != nil {
		c.out = p.build(r, c.sent)
	} else {
		b, ok := p.built[r]
		if !ok {
			b = p.build(r, time.Time{})
			p.built[r] = b
		}
		c.out = b
	}
	p.flush(c)
}

// build is the request's bytes, as net/http's client would write them
// (without Accept-Encoding: the body is discarded, not decoded).
func (p *poller) build(r *Request, now time.Time) []byte {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if r.Sign != nil {
		r.Sign(h, r.Body, now)
	}
	var b bytes.Buffer
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	path := p.base + r.Path
	if path == "" {
		path = "/"
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: claimsmith-loadtest\r\n", method, path, p.host)
	if len(r.Body) > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.Body))
	}
	_ = h.Write(&b)
	b.WriteString("\r\n")
	b.Write(r.Body)
	return b.Bytes()
}

// flush writes what is left of the request; a socket that takes only part
// of it gets the rest when epoll says it is writable.
func (p *poller) flush(c *pconn) {
	for len(c.out) > 0 {
		n, err := rawWrite(c.fd, c.out)
		if n > 0 {
			c.out = c.out[n:]
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			p.fail(c, "write: "+err.Error())
			return
		}
	}
	want := len(c.out) > 0
	if want != c.epollOut {
		c.epollOut = want
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
		if want {
			ev.Events |= unix.EPOLLOUT
		}
		if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
			p.fail(c, "epoll_ctl: "+err.Error())
		}
	}
}

// receive reads what the socket has and completes the request when its
// answer is whole.
func (p *poller) receive(c *pconn) {
	eof := false
	for {
		if len(c.in) == cap(c.in) {
			c.in = slices.Grow(c.in, cap(c.in))
		}
		n, err := rawRead(c.fd, c.in[len(c.in):cap(c.in)])
		if n > 0 {
			c.in = c.in[:len(c.in)+n]
			continue
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			p.fail(c, "read: "+err.Error())
			return
		}
		eof = true // n == 0
		break
	}
	if !c.busy {
		// The server closed (or wrote to) an idle connection.
		if eof || len(c.in) > 0 {
			p.drop(c)
		}
		return
	}
	status, end, keep, err := parseAnswer(c.in, eof, c.req.Method == http.MethodHead)
	switch {
	case err != nil:
		p.fail(c, err.Error())
	case end < 0 && eof:
		p.fail(c, "the server closed the connection before the end of the answer")
	case end < 0:
		// more to come
	default:
		finished := time.Now()
		r := c.req
		p.samples = append(p.samples, Sample{At: c.scheduled.Sub(p.start), Latency: finished.Sub(c.scheduled), Service: finished.Sub(c.sent),
			Kind: r.Kind, Status: status, OK: slices.Contains(r.Expect, status)})
		c.busy, c.req = false, nil
		p.inFlight--
		if !keep || eof || end != len(c.in) {
			p.drop(c)
			return
		}
		c.in = c.in[:0]
		p.idle = append(p.idle, c)
	}
}

// fail ends the connection's request with a transport error.
func (p *poller) fail(c *pconn, msg string) {
	if c.busy {
		now := time.Now()
		p.samples = append(p.samples, Sample{At: c.scheduled.Sub(p.start), Latency: now.Sub(c.scheduled), Kind: c.req.Kind, Err: msg})
		c.busy, c.req = false, nil
		p.inFlight--
	}
	p.drop(c)
}

// drop closes a connection (not busy) and forgets it.
func (p *poller) drop(c *pconn) {
	if p.byFD[c.fd] != c {
		return
	}
	delete(p.byFD, c.fd)
	if i := slices.Index(p.idle, c); i >= 0 {
		p.idle = slices.Delete(p.idle, i, i+1)
	}
	_ = unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, c.fd, nil)
	_ = unix.Close(c.fd)
}

func (p *poller) busy() []*pconn {
	var out []*pconn
	for _, c := range p.byFD {
		if c.busy {
			out = append(out, c)
		}
	}
	return out
}

func (p *poller) closeAll() {
	for _, c := range p.byFD {
		_ = unix.Close(c.fd)
	}
	p.byFD = nil
	_ = unix.Close(p.ep)
}

// The loop's system calls never block (a zero timeout, non-blocking
// sockets), so they are made raw: through syscall.Syscall the runtime
// would count the thread as blocked, and sysmon would hand the loop's P to
// another thread, which then spins looking for work on the same core —
// two threads taking turns on one CPU, the loop stalled for whole
// scheduler slices (measured: p99 8 ms against a server answering in
// 0.3 ms).
func epollWait(ep int, events []unix.EpollEvent, wait time.Duration) (int, error) {
	if wait <= 0 {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
	ts := unix.NsecToTimespec(wait.Nanoseconds())
	r, _, e := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(unsafe.Pointer(&ts)), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawRead(fd int, b []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

var (
	crlf     = []byte("\r\n")
	headEnd  = []byte("\r\n\r\n")
	errFrame = errors.New("loadtest: malformed HTTP answer")
)

// parseAnswer finds the end of the first final (non-1xx) HTTP/1.x answer
// in b: end < 0 while it is incomplete; keep is false when the server
// asked to close the connection. eof says the server closed it (the end
// of an answer framed by the connection's close).
func parseAnswer(b []byte, eof, head bool) (status, end int, keep bool, err error) {
	off := 0
	for {
		he := bytes.Index(b[off:], headEnd)
		if he < 0 {
			return 0, -1, false, nil
		}
		hdr := b[off : off+he]
		body := off + he + len(headEnd)
		line, rest, _ := bytes.Cut(hdr, crlf)
		// "HTTP/1.1 200 OK"
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
			return 0, -1, false, fmt.Errorf("%w: status line %q", errFrame, truncate(line))
		}
		status, err = strconv.Atoi(string(line[9:12]))
		if err != nil {
			return 0, -1, false, fmt.Errorf("%w: status line %q", errFrame, truncate(line))
		}
		keep = line[7] == '1' // HTTP/1.1 keeps the connection by default
		length, chunked := -1, false
		for len(rest) > 0 {
			var h []byte
			h, rest, _ = bytes.Cut(rest, crlf)
			name, value, ok := bytes.Cut(h, []byte(":"))
			if !ok {
				return 0, -1, false, fmt.Errorf("%w: header line %q", errFrame, truncate(h))
			}
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
					return 0, -1, false, fmt.Errorf("%w: Content-Length %q", errFrame, truncate(value))
				}
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				chunked = bytes.EqualFold(value, []byte("chunked"))
			case bytes.EqualFold(name, []byte("Connection")):
				if bytes.EqualFold(value, []byte("close")) {
					keep = false
				} else if bytes.EqualFold(value, []byte("keep-alive")) {
					keep = true
				}
			}
		}
		if status >= 100 && status < 200 {
			off = body // an interim answer (100 Continue): the final one follows
			continue
		}
		switch {
		case head || status == http.StatusNoContent || status == http.StatusNotModified:
			return status, body, keep, nil
		case chunked:
			n, err := chunkedEnd(b[body:])
			if err != nil || n < 0 {
				return status, -1, keep, err
			}
			return status, body + n, keep, nil
		case length >= 0:
			if len(b)-body < length {
				return status, -1, keep, nil
			}
			return status, body + length, keep, nil
		default:
			// Neither: the body ends when the server closes.
			if !eof {
				return status, -1, false, nil
			}
			return status, len(b), false, nil
		}
	}
}

// chunkedEnd is the length of a whole chunked body at the start of b
// (chunks, the last one, trailers), -1 when more is needed.
func chunkedEnd(b []byte) (int, error) {
	i := 0
	for {
		le := bytes.Index(b[i:], crlf)
		if le < 0 {
			return -1, nil
		}
		sizeText, _, _ := bytes.Cut(b[i:i+le], []byte(";")) // chunk extensions
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 64)
		if err != nil || size < 0 {
			return -1, fmt.Errorf("%w: chunk size %q", errFrame, truncate(sizeText))
		}
		i += le + len(crlf)
		if size == 0 {
			// Trailers, each ending in CRLF, then an empty line.
			for {
				te := bytes.Index(b[i:], crlf)
				if te < 0 {
					return -1, nil
				}
				i += te + len(crlf)
				if te == 0 {
					return i, nil
				}
			}
		}
		if int64(len(b)-i) < size+int64(len(crlf)) {
			return -1, nil
		}
		i += int(size)
		if !bytes.HasPrefix(b[i:], crlf) {
			return -1, fmt.Errorf("%w: chunk not followed by CRLF", errFrame)
		}
		i += len(crlf)
	}
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}
