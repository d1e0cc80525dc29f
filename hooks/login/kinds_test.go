package login_test

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/claimsmith/claimsmith/hooks/login"
)

// TestKindsDeclareEverything: every Kind names itself, has routes no other
// Kind has, and an example section that is valid configuration of its own
// (strict: a renamed key breaks the help, not the user); Help lists every
// route and example, and Routes labels each route with its Kind.
func TestKindsDeclareEverything(t *testing.T) {
	help := login.Help()
	seen := map[string]string{}
	for _, k := range login.Kinds() {
		if k.Name == "" || len(k.Routes) == 0 || k.Build == nil {
			t.Fatalf("incomplete kind %+v", k)
		}
		for _, rt := range k.Routes {
			if other, dup := seen[rt.Pattern]; dup {
				t.Errorf("%s is a route of %s and %s", rt.Pattern, other, k.Name)
			}
			seen[rt.Pattern] = k.Name
			if !strings.Contains(help, rt.Pattern) || !strings.Contains(help, rt.Summary) {
				t.Errorf("help lacks %s", rt.Pattern)
			}
		}
		var c login.Config
		dec := yaml.NewDecoder(bytes.NewReader([]byte(k.Example)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Errorf("%s: example section: %v", k.Name, err)
		}
		// The example is the Kind's section: building it builds this Kind
		// (or fails for want of the secrets it names), and nothing else.
		hs, err := k.Build(&c, login.Deps{Getenv: func(string) string { return "" }})
		if hs == nil && err == nil {
			t.Errorf("%s: its example section is not its own", k.Name)
		}
	}
	for _, rt := range login.Routes() {
		if rt.Label != seen[rt.Pattern] || rt.Handler != nil {
			t.Errorf("route %s: label %q, want %q", rt.Pattern, rt.Label, seen[rt.Pattern])
		}
	}
	if len(login.Routes()) != len(seen) {
		t.Errorf("Routes has %d routes, the kinds %d", len(login.Routes()), len(seen))
	}
	// The help's configuration block as a whole is valid too.
	_, block, _ := strings.Cut(help, "\n  hooks:\n")
	var doc struct {
		Hooks login.Config `yaml:"hooks"`
	}
	dec := yaml.NewDecoder(strings.NewReader("hooks:\n" + block))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil || doc.Hooks.Native == nil || doc.Hooks.Policy == nil {
		t.Errorf("help's hooks block: %v %+v", err, doc.Hooks)
	}
}
