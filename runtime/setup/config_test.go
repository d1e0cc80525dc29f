package setup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
	"github.com/claimsmith/claimsmith/runtime/wasm/wasmbuild"
)

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown section", "pipline: {}\n", `c.yaml:1: key "pipline": unknown key (known: `},
		{"unknown pipeline key", "pipeline:\n  namespace: https://x.example/\n  precedense: deny\n", `c.yaml:3: key "pipeline.precedense": unknown key`},
		{"unknown budget key", "pipeline:\n  claims_budget:\n    idtoken: 5\n", `c.yaml:3: key "pipeline.claims_budget.idtoken": unknown key (known: access_token, drop, id_token, overflow)`},
		{"entry key", "pipeline:\n  rules:\n    - rule: a\n    - name: second\n      rule: b\n      timout: 1s\n", `c.yaml:6: key "pipeline.rules[1].timout": rule "second": unknown key`},
		{"entry type", "pipeline:\n  rules:\n    - rule: a\n      pool_size: many\n", `c.yaml:4: key "pipeline.rules[0].pool_size": rule "a": cannot decode !!str ` + "`many`" + ` into int`},
		{"rules not a list", "pipeline:\n  rules: authorization\n", `c.yaml:2: key "pipeline.rules": cannot decode !!str`},
		{"second document", "pipeline: {}\n---\nserver: {addr: x}\n", `c.yaml:3: a second YAML document`},
		{"second document empty", "pipeline: {}\n---\n", `c.yaml:`},
		{"not a mapping", "- a\n- b\n", `c.yaml:1: the top level must be a mapping`},
		{"syntax", "pipeline:\n  rules: [\n", `c.yaml:2: did not find expected node content`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(c.yaml))
			if err == nil || !errors.Is(err, runtime.ErrInvalid) || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v\nwant prefix %s", err, c.want)
			}
		})
	}
	for _, empty := range []string{"", "# only a comment\n", "---\n"} {
		c, err := Parse("c.yaml", []byte(empty))
		if err != nil || c.Pipeline.Rules != nil {
			t.Fatalf("empty file %q: %v", empty, err)
		}
	}
}

func TestPipelineErrorLines(t *testing.T) {
	src := "pipeline:\n  namespace: https://x.example/\n  rules:\n    - rule: authorization\n      config:\n        claims:\n          groups: \"\"\n"
	c, err := Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.BuildPipeline(context.Background(), Env{}, memory.New(memory.Options{}), PipelineOptions{})
	want := `c.yaml:7: key "pipeline.rules[0].config.claims.groups": rule "authorization": empty claim name`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestWasmPathRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte("pipeline:\n  namespace: https://x.example/\n  rules:\n    - wasm: rules/missing.wasm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.BuildPipeline(context.Background(), Env{}, memory.New(memory.Options{}), PipelineOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), path+`:4: key "pipeline.rules[0].wasm": rule "missing": `) ||
		!strings.Contains(err.Error(), filepath.Join(dir, "rules", "missing.wasm")) {
		t.Fatalf("got %v", err)
	}
}

// FuzzConfig decodes arbitrary configuration files and builds their
// pipelines over an empty store: nothing may panic, and every error must be
// one line starting with the file name (so the operator knows where).
func FuzzConfig(f *testing.F) {
	sample, err := os.ReadFile("../../samples/config/claimsmith.yaml")
	if err != nil {
		f.Fatal(err)
	}
	// The sample without its comments: a small seed keeps minimization fast.
	var lines []string
	for _, l := range strings.Split(string(sample), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			lines = append(lines, l)
		}
	}
	f.Add([]byte(strings.Join(lines, "\n")))
	for _, s := range []string{
		"pipeline:\n  namespace: https://x.example/\n  rules:\n    - rule: time-window\n      config: {hours: \"9-17\"}\n",
		"pipeline:\n  allow_unnamespaced: true\n  rules:\n    - {rule: copy-metadata-claims, config: {app_metadata: [a]}}\n",
		"pipeline:\n  rules:\n    - &a {rule: required-roles}\n    - *a\n",
		"pipeline: {claims_budget: {id_token: -1, drop: [\"\"]}}\n",
		"server: {addr: 1}\ntokens: {}\n",
		"pipeline:\n  rules:\n    - rule: authorization\n      config: {1: 2}\n",
		"? [a]\n: b\n",
		"tokens: {algorithm: HS256, issuer: x}\n",
		"hooks: {native: {callers: [{name: a, webhook_secret: whsec_!!}]}, hydra: {api_key_env: K}}\n",
		"server: {tls_key_file: k.pem}\ntokens: {introspection: {clients: [{client_id: a, secret_hash: md5:0}]}}\n",
		"admin: {dashboard: {enabled: false, session_idle: 2h, session_max: 1h, secure_cookies: true}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") || strings.Contains(err.Error(), "\n") || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("bad error %q", err)
			}
			return
		}
		// Validate (no store, no secrets set): a refusal is one line naming
		// the file, matching ErrInvalid; nothing panics.
		if err := c.Validate(context.Background(), Env{Getenv: func(string) string { return "" }}); err != nil {
			var se *Error
			if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "fuzz.yaml:") || strings.Contains(err.Error(), "\n") || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("bad validation error %q", err)
			}
		}
		for _, r := range c.Pipeline.Rules {
			if r.Wasm != "" {
				return // module loading is the wasm package's to fuzz
			}
		}
		p, err := c.BuildPipeline(context.Background(), Env{}, memory.New(memory.Options{}), PipelineOptions{})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") || strings.Contains(err.Error(), "\n") || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("bad error %q", err)
			}
			return
		}
		defer p.Close()
		if _, err := p.Run(context.Background(), &runtime.Event{User: runtime.User{UserID: "u"}}); err != nil {
			t.Fatalf("run: %v", err)
		}
	})
}

// TestWasmCompiledOnceOnDisk: the pipeline's loader keeps compiled modules
// in $XDG_CACHE_HOME/claimsmith/wasm, so a restart, a reload or `check`
// finds them instead of compiling every module again (it compiled in
// memory, per build).
func TestWasmCompiledOnceOnDisk(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	ctx := context.Background()
	samples, err := wasmbuild.NewSamples(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mod, err := samples.Build(ctx, "deny-blocked-ips")
	if err != nil {
		t.Skipf("cannot build the WAT sample (wat2wasm): %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "claimsmith.yaml")
	if err := os.WriteFile(path, []byte("pipeline:\n  namespace: https://x.example/\n  rules:\n    - wasm: "+mod+"\n      config:\n        blocked: [\"203.0.113.7\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.BuildPipeline(ctx, Env{}, memory.New(memory.Options{}), PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var files int
	_ = filepath.WalkDir(filepath.Join(cache, "claimsmith", "wasm"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatal("no compiled module was kept in $XDG_CACHE_HOME/claimsmith/wasm")
	}
}
