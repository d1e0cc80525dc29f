package setup

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestGCSettings: server.gogc and server.memory_limit are validated with the
// one error shape, and the file wins over $GOGC, which wins over the
// default.
func TestGCSettings(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"gogc", "server:\n  gogc: -5\n", `c.yaml:2: key "server.gogc": is -5, must be -1 (off), 0 (default) or a percentage`},
		{"gogc off without limit", "server:\n  gogc: -1\n", `c.yaml:2: key "server.gogc": -1 (GC off) needs server.memory_limit`},
		{"memory_limit", "server:\n  memory_limit: lots\n", `c.yaml:2: key "server.memory_limit": is "lots", must be a size`},
		{"memory_limit negative", "server:\n  memory_limit: -1MiB\n", `c.yaml:2: key "server.memory_limit": is "-1MiB"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			lc, err := Parse("c.yaml", []byte(c.yaml))
			if err == nil {
				err = lc.Validate(context.Background(), Env{})
			}
			if err == nil || !errors.Is(err, runtime.ErrInvalid) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("got %v\nwant prefix %s", err, c.want)
			}
		})
	}
	env := func(gogc string) func(string) string {
		return func(k string) string {
			if k == "GOGC" {
				return gogc
			}
			return ""
		}
	}
	for _, c := range []struct {
		yaml, gogcEnv string
		percent       int
		limit         int64
	}{
		{"server: {}\n", "", DefaultGOGC, 0},
		{"server: {}\n", "50", 0, 0},
		{"server:\n  gogc: 300\n  memory_limit: 512MiB\n", "50", 300, 512 << 20},
		{"server:\n  gogc: -1\n  memory_limit: 1GB\n", "", -1, 1e9},
		{"server:\n  memory_limit: \"1048576\"\n", "", DefaultGOGC, 1 << 20},
	} {
		lc, err := Parse("c.yaml", []byte(c.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if err := lc.Validate(context.Background(), Env{}); err != nil {
			t.Fatal(err)
		}
		p, l := lc.gcSettings(env(c.gogcEnv))
		if p != c.percent || l != c.limit {
			t.Fatalf("%q GOGC=%q: got %d, %d; want %d, %d", c.yaml, c.gogcEnv, p, l, c.percent, c.limit)
		}
	}
}
