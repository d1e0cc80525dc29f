package redistest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DelayProxy forwards TCP connections to Redis; when DelayNext is set, the
// next reply chunk is held for 300ms. A client with a shorter read timeout
// gives up on a command Redis executed and retries it: what a lost reply
// does to a non-idempotent write.
type DelayProxy struct {
	Addr      string
	DelayNext atomic.Bool
}

// StartDelayProxy listens on a free loopback port in front of target; the
// test's cleanup closes it.
func StartDelayProxy(t testing.TB, target string) *DelayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &DelayProxy{Addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			cc, err := ln.Accept()
			if err != nil {
				return
			}
			rc, err := net.Dial("tcp", target)
			if err != nil {
				cc.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, cc, rc)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(rc, cc); rc.Close() })
			wg.Go(func() {
				defer cc.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := rc.Read(buf)
					if n > 0 {
						if p.DelayNext.CompareAndSwap(true, false) {
							time.Sleep(300 * time.Millisecond)
						}
						if _, werr := cc.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return p
}

// Client is a go-redis client of the proxy that gives up on a reply after
// 100ms and retries at once: with DelayNext, the command runs twice.
func (p *DelayProxy) Client(t testing.TB) goredis.UniversalClient {
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{p.Addr}, ContextTimeoutEnabled: true,
		ReadTimeout: 100 * time.Millisecond, WriteTimeout: time.Second, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}
