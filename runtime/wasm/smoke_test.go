package wasm

import (
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestSmokeSamples(t *testing.T) {
	l := NewLoader(Options{Logger: testLogger(t)})
	for _, name := range []string{"deny-blocked-ips", "add-tenant-claim", "weekday-only"} {
		p := samples.MustBuild(t, name)
		r := load(t, l, runtime.ModuleSpec{Name: name, Path: p, Config: map[string]string{"blocked_ips": "10.0.0.1, 198.51.100.23", "days": "Mon,Tue,Wed,Thu,Fri,Sat,Sun"}})
		out, err := runRule(t, r, sampleEvent())
		t.Logf("%s: fast=%v err=%v out=%+v", name, (<-r.pool).fast, err, out)
	}
}
