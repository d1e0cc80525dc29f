package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

type tokenFlags struct {
	Groups      bool `json:"groups"`
	Roles       bool `json:"roles"`
	Permissions bool `json:"permissions"`
}

type sampleSettings struct {
	Keys    []string              `json:"keys"`
	IDToken tokenFlags            `json:"id_token"`
	Names   map[string]string     `json:"names"`
	Items   []tokenFlags          `json:"items"`
	ByName  map[string]tokenFlags `json:"by_name"`
	Limit   int                   `json:"limit"`
}

func TestSettingsDecoder(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]any
		key      string // "" when it decodes
		reason   string
	}{
		{"ok", map[string]any{"keys": []any{"a"}, "id_token": map[string]any{"roles": true}, "limit": 3}, "", ""},
		{"empty", nil, "", ""},
		{"unknown top", map[string]any{"colour": "red"}, "colour", "unknown key (known: by_name, id_token, items, keys, limit, names)"},
		{"unknown nested", map[string]any{"id_token": map[string]any{"scopes": true}}, "id_token.scopes", "unknown key"},
		{"case differs", map[string]any{"Keys": []any{"a"}}, "Keys", "unknown key"},
		{"in list", map[string]any{"items": []any{map[string]any{"roles": true}, map[string]any{"role": true}}}, "items[1].role", "unknown key"},
		{"in map", map[string]any{"by_name": map[string]any{"x": map[string]any{"nope": 1}}}, "by_name.x.nope", "unknown key"},
		{"wrong type", map[string]any{"limit": "three"}, "limit", "expected an integer, got string"},
		{"wrong nested type", map[string]any{"id_token": map[string]any{"roles": "yes"}}, "id_token.roles", "expected true or false, got string"},
		{"object for list", map[string]any{"keys": map[string]any{}}, "keys", "expected a list, got object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := sampleSettings{Limit: 7}
			err := runtime.SettingsDecoder(c.settings)(&v)
			if c.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *runtime.SettingError
			if !errors.As(err, &se) || se.Key != c.key || !strings.Contains(se.Reason, c.reason) || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("err %#v, want key %q reason %q", err, c.key, c.reason)
			}
		})
	}
	v := sampleSettings{Limit: 7}
	if err := runtime.SettingsDecoder(map[string]any{"keys": []any{"a"}})(&v); err != nil || v.Limit != 7 || v.Keys[0] != "a" {
		t.Fatalf("defaults must survive: %+v %v", v, err)
	}
}

func TestConfigErrors(t *testing.T) {
	reg := runtime.NewRegistry()
	_ = reg.Register("strict", func(decode runtime.Decoder) (runtime.Rule, error) {
		var s sampleSettings
		if err := decode(&s); err != nil {
			return nil, err
		}
		if s.Limit < 0 {
			return nil, &runtime.SettingError{Key: "limit", Reason: "must not be negative"}
		}
		return ruleFunc(func(context.Context, *runtime.Event, *runtime.Commands) error { return nil }), nil
	})
	_ = reg.Register("panics", func(runtime.Decoder) (runtime.Rule, error) { panic("oops") })
	ok := runtime.RuleEntry{Name: "ok", Rule: "strict"}
	cases := []struct {
		name  string
		cfg   runtime.PipelineConfig
		entry int
		key   string
		msg   string
	}{
		{"unknown rule", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{ok, {Name: "x", Rule: "nope"}}}, 1, "rule", `unknown rule "nope" (built-in rules: panics, strict)`},
		{"unknown key", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Name: "s", Rule: "strict", Config: map[string]any{"id_token": map[string]any{"grups": true}}}}}, 0, "config.id_token.grups", "unknown key"},
		{"bad setting", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Rule: "strict", Config: map[string]any{"limit": -1}}}}, 0, "config.limit", "must not be negative"},
		{"bad namespace", runtime.PipelineConfig{Namespace: "example.com", Rules: []runtime.RuleEntry{ok}}, -1, "namespace", "not an http(s) URL"},
		{"namespace with query", runtime.PipelineConfig{Namespace: "https://example.com/?a=b", Rules: []runtime.RuleEntry{ok}}, -1, "namespace", "without user, query or fragment"},
		{"missing namespace", runtime.PipelineConfig{Rules: []runtime.RuleEntry{ok}}, -1, "namespace", "required"},
		{"bad rule timeout", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{ok, {Name: "t", Rule: "strict", Timeout: "fast"}}}, 1, "timeout", `"fast" is not a duration`},
		{"negative rule timeout", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Rule: "strict", Timeout: "-5ms"}}}, 0, "timeout", "must be positive"},
		{"rule timeout over budget", runtime.PipelineConfig{Namespace: ns, Timeout: "1s", Rules: []runtime.RuleEntry{ok, {Name: "t", Rule: "strict", Timeout: "5s"}}}, 1, "timeout", "longer than the pipeline timeout 1s"},
		{"bad pipeline timeout", runtime.PipelineConfig{Namespace: ns, Timeout: "2", Rules: []runtime.RuleEntry{ok}}, -1, "timeout", "not a duration"},
		{"bad precedence", runtime.PipelineConfig{Namespace: ns, Precedence: "maybe"}, -1, "precedence", "not one of deny, allow"},
		{"bad default", runtime.PipelineConfig{Namespace: ns, Default: "abstain"}, -1, "default", "not one of allow, deny"},
		{"bad on_error", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Rule: "strict", OnError: "retry"}}}, 0, "on_error", "not one of deny, skip"},
		{"duplicate name", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{ok, ok}}, 1, "name", "already the name of rules[0]"},
		{"rule and wasm", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Rule: "strict", Wasm: "a.wasm"}}}, 0, "wasm", "not both"},
		{"neither", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Name: "empty"}}}, 0, "rule", "required"},
		{"wasm key on native", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Rule: "strict", Memory: "1MiB"}}}, 0, "memory", "wasm modules only"},
		{"wasm without loader", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Wasm: "geo.wasm"}}}, 0, "wasm", "not available"},
		{"bad budget", runtime.PipelineConfig{Namespace: ns, ClaimsBudget: runtime.BudgetConfig{IDToken: 10}}, -1, "claims_budget.id_token", "at least 64"},
		{"bad overflow", runtime.PipelineConfig{Namespace: ns, ClaimsBudget: runtime.BudgetConfig{Overflow: "truncate"}}, -1, "claims_budget.overflow", "not one of drop, deny"},
		{"panicking constructor", runtime.PipelineConfig{Namespace: ns, Rules: []runtime.RuleEntry{{Rule: "panics"}}}, 0, "config", "constructor panicked: oops"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runtime.NewPipeline(context.Background(), c.cfg, runtime.Deps{Registry: reg})
			var ce *runtime.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("err %v (%T)", err, err)
			}
			if ce.Entry != c.entry || ce.Key != c.key || !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got entry %d key %q: %v; want entry %d key %q msg %q", ce.Entry, ce.Key, err, c.entry, c.key, c.msg)
			}
		})
	}
}

func TestParseHelpers(t *testing.T) {
	for in, want := range map[string]uint64{"64MiB": 64 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "10MB": 10e6, "4096": 4096, "12 B": 12} {
		if got, err := runtime.ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"-1MiB", "0", "lots", "1.5MiB", "99999999999999999999GiB"} {
		if _, err := runtime.ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	if got, err := runtime.ParseNamespace("https://example.com"); err != nil || got != "https://example.com/" {
		t.Errorf("ParseNamespace: %q %v", got, err)
	}
	for _, bad := range []string{"ftp://example.com/", "https://", "example.com/", "https://u:p@example.com/", "https://example.com/#x"} {
		if _, err := runtime.ParseNamespace(bad); err == nil {
			t.Errorf("ParseNamespace(%q) accepted", bad)
		}
	}
}

// FuzzSettingsDecoder decodes arbitrary JSON settings (as a YAML or JSON
// config would deliver them) into a rule's settings struct: it must never
// panic, must report errors as *SettingError, and what it accepts must
// satisfy encoding/json's own strict decoding too.
func FuzzSettingsDecoder(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"keys":["a","b"],"id_token":{"groups":true}}`, `{"colour":1}`, `{"items":[{"roles":true},{"x":1}]}`,
		`{"by_name":{"a":{"groups":false}}}`, `{"limit":1e400}`, `{"limit":"3"}`, `{"names":{"a":1}}`, `{"keys":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var settings map[string]any
		if json.Unmarshal(data, &settings) != nil {
			return
		}
		var v sampleSettings
		err := runtime.SettingsDecoder(settings)(&v)
		if err != nil {
			var se *runtime.SettingError
			if !errors.As(err, &se) || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		raw, _ := json.Marshal(settings)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var w sampleSettings
		if err := dec.Decode(&w); err != nil {
			t.Fatalf("accepted %s that encoding/json refuses: %v", raw, err)
		}
	})
}
