package redis

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseRevMarker: any marker value read from Redis parses without
// panicking, and a loss marker is always a loss (a time that does not
// parse counts as now, never as "no loss").
func FuzzParseRevMarker(f *testing.F) {
	for _, s := range []string{"", "list:0a1b", "lost:1700000000000:ab:list:0a1b", "lost:", "lost:x:y", "lost:-1", "lost:99999999999999999999:z"} {
		f.Add(s)
	}
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, v string) {
		m := parseRevMarker(v, now)
		if m.value != v {
			t.Fatalf("value %q, want %q", m.value, v)
		}
		if strings.HasPrefix(v, revMarkerLost) && m.lostAt.IsZero() {
			t.Fatalf("loss marker %q parsed as no loss", v)
		}
		if !strings.HasPrefix(v, revMarkerLost) && (!m.lostAt.IsZero() || m.before != "") {
			t.Fatalf("marker %q parsed as a loss", v)
		}
	})
}
