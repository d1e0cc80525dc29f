package setup

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestWarnRestartOnly: a reload names the sections it cannot apply (they
// changed since start) and stays quiet about pipeline and hooks changes.
func TestWarnRestartOnly(t *testing.T) {
	parse := func(y string) *Config {
		t.Helper()
		lc, err := Parse("claimsmith.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return lc
	}
	start := parse("server:\n  addr: 127.0.0.1:8080\npipeline:\n  namespace: https://a.example/\n  rules:\n    - rule: required-roles\n")
	for _, c := range []struct {
		name, yaml string
		want       []string // "" entries: no warning at all
	}{
		{"pipeline and hooks only", "server:\n  addr: 127.0.0.1:8080\npipeline:\n  namespace: https://a.example/\n  rules:\n    - rule: require-verified-email\nhooks:\n  max_body: 1024\n", nil},
		{"listener and cache", "server:\n  addr: 127.0.0.1:9090\ncache:\n  near_size: 5\npipeline:\n  namespace: https://a.example/\n", []string{"server", "cache"}},
		{"namespace", "server:\n  addr: 127.0.0.1:8080\npipeline:\n  namespace: https://b.example/\n", []string{"pipeline.namespace"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			env := Env{Log: slog.New(slog.NewTextHandler(&buf, nil))}
			warnRestartOnly(t.Context(), env, start, parse(c.yaml))
			out := buf.String()
			if c.want == nil {
				if out != "" {
					t.Fatalf("unexpected warning: %s", out)
				}
				return
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("warning %q does not name %s", out, w)
				}
			}
			if strings.Contains(out, "hooks") {
				t.Errorf("warning names hooks: %s", out)
			}
		})
	}
}
