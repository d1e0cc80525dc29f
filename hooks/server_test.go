package hooks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestServerGracefulShutdownAndHealth(t *testing.T) {
	log := testLogger()
	started := make(chan struct{})
	release := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			WriteError(w, err)
			return
		}
		w.Write(b)
	})
	storeDown := errors.New("store unreachable")
	var ready atomic.Bool
	ready.Store(true)
	mux, err := NewMux([]Route{
		{Pattern: "GET /slow", Handler: slow},
		{Pattern: "POST /echo", Handler: echo, MaxBody: 10},
	}, []ReadyCheck{{Name: "store", Check: func(context.Context) error {
		if ready.Load() {
			return nil
		}
		return storeDown
	}}}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}, mux, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	addr, err := srv.Addr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	ready.Store(false)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "store unreachable") {
		t.Fatalf("readyz when not ready: %d %s", code, body)
	}
	// Body limit per route: a declared and an undeclared (chunked) oversize body.
	resp, err := http.Post(base+"/echo", "text/plain", strings.NewReader("0123456789ABC"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize body: %d", resp.StatusCode)
	}
	resp, err = http.Post(base+"/echo", "text/plain", io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("ABC")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize chunked body: %d", resp.StatusCode)
	}

	// A request in flight when shutdown starts still completes.
	got := make(chan string, 1)
	go func() {
		_, body := get("/slow")
		got <- body
	}()
	<-started
	stop()
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		t.Error("still accepting connections during shutdown")
	}
	close(release)
	if body := <-got; body != "finished" {
		t.Fatalf("in-flight request: %q", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestServerConfigErrors(t *testing.T) {
	h := http.NotFoundHandler()
	if _, err := NewMux([]Route{{Pattern: "GET /x", Handler: h}, {Pattern: "GET /x", Handler: h}}, nil, testLogger()); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("duplicate route: %v", err)
	}
	if _, err := NewServer(ServerConfig{TLSCertFile: "cert.pem"}, h, testLogger()); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("cert without key: %v", err)
	}
	if _, err := NewServer(ServerConfig{TLSCertFile: "/nonexistent/cert.pem", TLSKeyFile: "/nonexistent/key.pem"}, h, testLogger()); err == nil || !strings.Contains(err.Error(), "/nonexistent/cert.pem") {
		t.Fatalf("missing TLS files: %v", err)
	}
}

func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)

	mux, _ := NewMux(nil, nil, testLogger())
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile}, mux, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	addr, _ := srv.Addr(context.Background())
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("https healthz: %d %v", resp.StatusCode, resp.TLS)
	}
	// Plain HTTP to the TLS port is refused.
	if resp, err := http.Get("http://" + addr.String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
