package oauth

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
)

// TestUnauthenticatedBodiesShareTheBudget: the token, introspection and
// revocation endpoints read a body before its client is authenticated
// (credentials in the form). Those bodies count against the server's
// unauthenticated-body budget, as signed webhooks do: a caller that
// declares a large body and stalls holds budget, and once it is spent the
// next unauthenticated request is refused at once (503, Retry-After)
// instead of the server holding ever more buffers.
func TestUnauthenticatedBodiesShareTheBudget(t *testing.T) {
	for name, mk := range map[string]func(*hooks.BodyBudget) http.Handler{
		"token":      func(b *hooks.BodyBudget) http.Handler { return &TokenHandler{Budget: b} },
		"introspect": func(b *hooks.BodyBudget) http.Handler { return &IntrospectHandler{Budget: b, MaxBody: MaxOAuthBody} },
		"revoke":     func(b *hooks.BodyBudget) http.Handler { return &RevokeHandler{Budget: b, MaxBody: MaxOAuthBody} },
	} {
		t.Run(name, func(t *testing.T) {
			budget := hooks.NewBodyBudget(16 << 10)
			srv := httptest.NewServer(mk(budget))
			t.Cleanup(srv.Close)
			addr := strings.TrimPrefix(srv.URL, "http://")
			stall := func() net.Conn {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\nclient_id=a&client_secret=")
				return c
			}
			stall()
			// The stalled body holds budget once the handler reads it.
			for deadline := time.Now().Add(30 * time.Second); budget.InUse() == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the stalled unauthenticated body holds no budget")
				}
			}
			c := stall()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("second stalled request: %v", err)
			}
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
				t.Fatalf("over budget: %d Retry-After %q, want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
			}
			if budget.Refused() == 0 {
				t.Fatal("the refusal is not counted")
			}
		})
	}
}
