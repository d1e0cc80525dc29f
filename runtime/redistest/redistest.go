// Package redistest starts real redis-server processes for tests: a single
// node on a free loopback port with its own temporary directory, or a small
// Cluster. Tests use them to talk to a real Redis (never a mock and never the
// shared 127.0.0.1:6379) and to inject faults: kill and restart the server,
// pause its clients, or freeze the process so that connections hang.
//
// The redis-server binary is taken from $REDIS_SERVER or PATH. When it is
// missing the test is skipped, unless $CLAIMSMITH_REQUIRE_REDIS is set (CI),
// in which case it fails.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options tune a server. The zero value is an in-memory server without
// persistence, which is what cache tests want.
type Options struct {
	// AppendOnly turns on AOF with appendfsync always, so that Kill and
	// Restart keep every acknowledged write (store tests).
	AppendOnly bool
	// Password sets requirepass.
	Password string
	// Args are extra redis-server arguments, e.g. "--maxmemory", "10mb".
	Args []string
}

// Server is one redis-server process owned by a test.
type Server struct {
	tb   testing.TB
	bin  string
	opts Options
	dir  string
	port int
	argv []string // command line of the last start, reused by Restart

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	frozen bool
}

// Binary returns the redis-server path, skipping (or failing, when
// $CLAIMSMITH_REQUIRE_REDIS is set) the test when there is none.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CLAIMSMITH_REQUIRE_REDIS") != "" {
			tb.Fatalf("redistest: redis-server not found in PATH and $REDIS_SERVER unset: %v", err)
		}
		tb.Skipf("redistest: redis-server not found (install redis-server or set $REDIS_SERVER): %v", err)
	}
	return p
}

// Start starts a redis-server on a free loopback port and stops it when the
// test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: Binary(tb), opts: opts, dir: tb.TempDir()}
	var err error
	// A free port can be taken between probing and binding; retry a few times.
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(); err != nil {
			continue
		}
		s.argv = nil // recomputed for the new port
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redistest: start redis-server: %v", err)
	}
	tb.Cleanup(s.stop)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// Dir is the server's working directory (AOF and RDB files).
func (s *Server) Dir() string { return s.dir }

func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--daemonize", "no",
		"--loglevel", "warning",
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--enable-debug-command", "local",
	}
	if s.opts.AppendOnly {
		a = append(a, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		a = append(a, "--appendonly", "no")
	}
	if s.opts.Password != "" {
		a = append(a, "--requirepass", s.opts.Password)
	}
	return append(a, s.opts.Args...)
}

func (s *Server) start() error {
	if s.argv != nil {
		return s.startWith(s.argv)
	}
	return s.startWith(s.args())
}

func (s *Server) startWith(argv []string) error {
	s.argv = argv
	cmd := exec.Command(s.bin, argv...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.frozen = cmd, done, false
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.ping(); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start (port %d): %s", s.port, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on port %d not ready after 10s: %s", s.port, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// ping speaks RESP directly so that the helper needs no client library.
func (s *Server) ping() error {
	_, err := s.Do("PING")
	return err
}

// Do sends one command on a fresh connection and returns the first line of
// the reply (status, error, integer or the bulk string's payload). It is a
// small tool for fault injection, not a client.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	if s.opts.Password != "" {
		writeCommand(&b, "AUTH", s.opts.Password)
	}
	writeCommand(&b, args...)
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	if s.opts.Password != "" {
		if _, err := readReply(r); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	return readReply(r)
}

func writeCommand(b *strings.Builder, args ...string) {
	fmt.Fprintf(b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(b, "$%d\r\n%s\r\n", len(a), a)
	}
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '-':
		return "", errors.New(line[1:])
	case '+', ':':
		return line[1:], nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return line, nil
	}
}

// Kill stops the server abruptly (SIGKILL), as a crash would: clients see
// connection errors. Data not yet persisted is lost (with AppendOnly every
// acknowledged write survives).
func (s *Server) Kill() {
	s.tb.Helper()
	s.mu.Lock()
	cmd, done, frozen := s.cmd, s.done, s.frozen
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	if frozen {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	<-done
}

// Restart starts the server again on the same port and directory after
// Kill (or kills it first when it is running).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	var err error
	// The kernel may hold the port briefly; retry.
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: restart redis-server on port %d: %v", s.port, err)
}

// RestartEmpty kills the server, deletes its persistence (AOF and RDB
// files) and starts it again on the same port: a Redis that came back
// without its data, as after a lost volume or a failover to an empty
// replica.
func (s *Server) RestartEmpty() {
	s.tb.Helper()
	s.Kill()
	for _, name := range []string{"appendonlydir", "appendonly.aof", "dump.rdb"} {
		if err := os.RemoveAll(filepath.Join(s.dir, name)); err != nil {
			s.tb.Fatalf("redistest: RestartEmpty: %v", err)
		}
	}
	s.Restart()
}

// Pause blocks every client command for d with CLIENT PAUSE ALL (the
// server keeps accepting connections but does not answer), then returns
// immediately; the server resumes by itself after d.
func (s *Server) Pause(d time.Duration) {
	s.tb.Helper()
	if _, err := s.Do("CLIENT", "PAUSE", strconv.FormatInt(d.Milliseconds(), 10), "ALL"); err != nil {
		s.tb.Fatalf("redistest: CLIENT PAUSE: %v", err)
	}
}

// Sleep blocks the whole server for d with DEBUG SLEEP, in the background;
// it returns once the server has started sleeping.
func (s *Server) Sleep(d time.Duration) {
	s.tb.Helper()
	go func() {
		_, _ = s.Do("DEBUG", "SLEEP", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
	}()
	// Wait until a PING stops answering promptly, i.e. the sleep has begun.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Millisecond))
		_, _ = c.Write([]byte("*1\r\n$4\r\nPING\r\n"))
		_, err = bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			return
		}
	}
	s.tb.Fatalf("redistest: DEBUG SLEEP did not take effect")
}

// Freeze stops the process (SIGSTOP): connections are accepted by the
// kernel but nothing answers, which is how a hung server or a network
// partition looks to a client. Thaw resumes it.
func (s *Server) Freeze() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.tb.Fatalf("redistest: Freeze: server not running")
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.tb.Fatalf("redistest: SIGSTOP: %v", err)
	}
	s.frozen = true
}

// Thaw resumes a frozen server.
func (s *Server) Thaw() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || !s.frozen {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.tb.Fatalf("redistest: SIGCONT: %v", err)
	}
	s.frozen = false
}

// RSS returns the server's used_memory_rss in bytes (INFO memory).
func (s *Server) RSS() (int64, error) {
	return s.infoInt("memory", "used_memory_rss")
}

// UsedMemory returns the server's used_memory in bytes (INFO memory).
func (s *Server) UsedMemory() (int64, error) {
	return s.infoInt("memory", "used_memory")
}

func (s *Server) infoInt(section, field string) (int64, error) {
	info, err := s.Do("INFO", section)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO %s: no field %s", section, field)
}

func (s *Server) stop() {
	s.Thaw()
	s.Kill()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Cluster is a Redis Cluster of masters without replicas, for tests that
// check key hash tags and cross-slot rules.
type Cluster struct {
	Nodes []*Server
}

// Addrs are the nodes' host:port, the seed list for a cluster client.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// StartCluster starts n (≥ 3) cluster-enabled servers, spreads the 16384
// slots over them and waits until the cluster state is ok.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 3 {
		n = 3
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		c.Nodes = append(c.Nodes, Start(tb, Options{Args: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		}}))
	}
	const slots = 16384
	for i, node := range c.Nodes {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if _, err := node.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			tb.Fatalf("redistest: CLUSTER ADDSLOTSRANGE on %s: %v", node.Addr(), err)
		}
	}
	for _, node := range c.Nodes[1:] {
		if _, err := c.Nodes[0].Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(node.Port())); err != nil {
			tb.Fatalf("redistest: CLUSTER MEET %s: %v", node.Addr(), err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, node := range c.Nodes {
		for {
			info, err := node.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster not ok after 20s on %s: %v %s", node.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Sentinel is one redis-sentinel process monitoring a master.
type Sentinel struct {
	*Server
	MasterName string
}

// StartSentinel starts a sentinel (redis-server --sentinel) that monitors
// master under masterName with a quorum of 1, and waits until it knows the
// master.
func StartSentinel(tb testing.TB, master *Server, masterName string) *Sentinel {
	tb.Helper()
	s := &Server{tb: tb, bin: Binary(tb), dir: tb.TempDir()}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.port, err = freePort(); err != nil {
			continue
		}
		conf := filepath.Join(s.dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 1000\n",
			s.port, s.dir, filepath.Join(s.dir, "redis.log"), masterName, master.Port(), masterName)
		if master.opts.Password != "" {
			body += fmt.Sprintf("sentinel auth-pass %s %s\n", masterName, master.opts.Password)
		}
		if err = os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatalf("redistest: write sentinel.conf: %v", err)
		}
		if err = s.startWith([]string{conf, "--sentinel"}); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redistest: start sentinel: %v", err)
	}
	tb.Cleanup(s.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		reply, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)
		if err == nil && reply != "" {
			return &Sentinel{Server: s, MasterName: masterName}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: sentinel does not know master %q: %v", masterName, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
