package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	// Time zones for the time-window rule, also in images without tzdata.
	_ "time/tzdata"

	"gopkg.in/yaml.v3"

	"github.com/claimsmith/claimsmith/hooks/forwardauth"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
	redisstore "github.com/claimsmith/claimsmith/runtime/authz/redis"
	"github.com/claimsmith/claimsmith/runtime/exchange"
)

// Config is the whole configuration file (samples/config/claimsmith.yaml
// documents every key). Each top-level section is one field owned by one
// part of claimsmith; add a section as one more field. Decoding is strict:
// an unknown key anywhere is an error naming the file, line and key.
type Config struct {
	// Pipeline is the login pipeline: rules, decision, limits, namespace.
	Pipeline runtime.PipelineConfig `yaml:"pipeline"`
	// Server is the HTTP server and the process's GC settings.
	Server ServerConfig `yaml:"server"`
	// Tokens is minting, keys and introspection (tokens.go).
	Tokens TokensConfig `yaml:"tokens"`
	// Hooks are the IdP-facing endpoints and their secrets.
	Hooks *login.Config `yaml:"hooks"`
	// Store, Redis and Cache say where the data lives and how logins cache
	// policies (backends.go documents them).
	Store StoreConfig       `yaml:"store"`
	Redis redisstore.Config `yaml:"redis"`
	Cache CacheConfig       `yaml:"cache"`
	// ForwardAuth is GET /hooks/forward-auth for gateways (nginx
	// auth_request, Traefik ForwardAuth, Caddy forward_auth); reloaded with
	// the pipeline.
	ForwardAuth forwardauth.Config `yaml:"forward_auth"`
	// Exchange is POST /oauth2/token: RFC 8693 token exchange of upstream
	// OIDC tokens and client_credentials for claimsmith's own clients
	// (exchange.go); restart-only.
	Exchange exchange.Config `yaml:"exchange"`
	// Admin is the admin dashboard's settings (dashboard.go); restart-only.
	Admin AdminConfig `yaml:"admin"`

	path string     // "" for the embedded defaults
	root *yaml.Node // the document's top-level mapping; nil for an empty file
}

// Default is the configuration without a file: every default, no pipeline.
func Default() *Config { return &Config{} }

// Path is the file the configuration came from ("" for Default).
func (c *Config) Path() string { return c.path }

// Dir is the folder paths in the file are relative to (wasm modules).
func (c *Config) Dir() string {
	if c.path == "" {
		return "."
	}
	return filepath.Dir(c.path)
}

// name is how errors call the file.
func (c *Config) name() string {
	if c.path == "" {
		return "(defaults)"
	}
	return c.path
}

// Load reads and strictly decodes the configuration file, once. Every error
// is a *Error: "FILE:LINE: key "a.b": what is wrong". Load checks the file's
// shape (keys, types, one document); Validate checks the values.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return Parse(path, b)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse is Load on bytes; path names the file in errors and is the base of
// relative paths in it.
func Parse(path string, b []byte) (*Config, error) {
	c := &Config{path: path}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil // an empty file: every default
		}
		return nil, c.syntaxError(err)
	}
	// One file, one document: a second one would be silently ignored.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		line := next.Line
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, &Error{File: path, Line: line, Err: invalidf("a second YAML document (after ---): the configuration is one document")}
	case !errors.Is(err, io.EOF):
		return nil, c.syntaxError(err)
	}
	if len(doc.Content) == 0 {
		return c, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return c, nil // "---" alone
	}
	if root.Kind != yaml.MappingNode {
		fields := map[string]reflect.Type{}
		yamlKeys(reflect.TypeOf(*c), fields)
		return nil, &Error{File: path, Line: root.Line, Err: invalidf("the top level must be a mapping of sections (%s)", strings.Join(sortedKeys(fields), ", "))}
	}
	c.root = root
	if err := c.checkKeys(root, reflect.TypeOf(*c), nil); err != nil {
		return nil, err
	}
	if err := root.Decode(c); err != nil {
		return nil, c.typeError(err)
	}
	return c, nil
}

func (c *Config) syntaxError(err error) error {
	msg := oneLine(err.Error())
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: c.path, Line: line, Err: invalidf("%s", m[2])}
	}
	return &Error{File: c.path, Err: invalidf("%s", strings.TrimPrefix(msg, "yaml: "))}
}

// keyPath is a path into the file: map keys and sequence indexes.
type keyPath []string

func (p keyPath) String() string {
	var b strings.Builder
	for _, s := range p {
		if strings.HasPrefix(s, "[") {
			b.WriteString(s)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func (p keyPath) with(s ...string) keyPath { return append(p[:len(p):len(p)], s...) }

func idx(i int) string { return fmt.Sprintf("[%d]", i) }

// checkKeys walks a YAML node along the Go type it decodes into and reports
// the first key the type does not have. yaml.v3's KnownFields reports a
// Go type name, not the entry; this names the rule entry and the key.
// Free-form values (a rule's `config`, typed map[string]any) are left to
// the rule's own strict decoder.
func (c *Config) checkKeys(n *yaml.Node, t reflect.Type, path keyPath) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		yamlKeys(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				return c.errAt(k.Line, path.with(k.Value), invalidf("unknown key (known: %s)", strings.Join(sortedKeys(fields), ", ")))
			}
			if err := c.checkKeys(n.Content[i+1], ft, path.with(k.Value)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := c.checkKeys(n.Content[i+1], t.Elem(), path.with(n.Content[i].Value)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if err := c.checkKeys(item, t.Elem(), path.with(idx(i))); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// yamlKeys collects a struct's yaml keys, descending into inline fields.
func yamlKeys(t reflect.Type, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			yamlKeys(ft, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

// errAt is the one error shape: the file, the line, the full key and,
// inside a pipeline rule entry, the entry's name.
func (c *Config) errAt(line int, key keyPath, err error) error {
	e := &Error{File: c.name(), Line: line, Key: key.String(), Err: err}
	if len(key) >= 3 && key[0] == "pipeline" && key[1] == "rules" && strings.HasPrefix(key[2], "[") {
		i, _ := strconv.Atoi(strings.Trim(key[2], "[]"))
		e.Rule = c.entryName(i)
	}
	return e
}

// bad reports err at the key (the line of the key, or of its nearest
// ancestor in the file when the key is missing there).
func (c *Config) bad(key keyPath, err error) error { return c.errAt(c.lineOf(key), key, err) }

// entryName is what a rule entry is called in errors: its name, else its
// rule id or module file, as the pipeline builder names it.
func (c *Config) entryName(i int) string {
	if i < 0 || i >= len(c.Pipeline.Rules) {
		entry := c.find(keyPath{"pipeline", "rules", idx(i)})
		var e runtime.RuleEntry
		if entry == nil || entry.Kind != yaml.MappingNode {
			return ""
		}
		var raw struct {
			Name string `yaml:"name"`
			Rule string `yaml:"rule"`
			Wasm string `yaml:"wasm"`
		}
		_ = entry.Decode(&raw) // best effort, for the message only
		e.Name, e.Rule, e.Wasm = raw.Name, raw.Rule, raw.Wasm
		return ruleName(e)
	}
	return ruleName(c.Pipeline.Rules[i])
}

func ruleName(e runtime.RuleEntry) string {
	switch {
	case e.Name != "":
		return e.Name
	case e.Rule != "":
		return e.Rule
	default:
		return strings.TrimSuffix(filepath.Base(e.Wasm), ".wasm")
	}
}

// find returns the value node at path, or nil.
func (c *Config) find(path keyPath) *yaml.Node {
	n := c.root
	for _, p := range path {
		if n == nil {
			return nil
		}
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		switch {
		case strings.HasPrefix(p, "[") && n.Kind == yaml.SequenceNode:
			i, err := strconv.Atoi(strings.Trim(p, "[]"))
			if err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
		case n.Kind == yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
				}
			}
			n = next
		default:
			return nil
		}
	}
	return n
}

// lineOf is the line of the key at path (or of its nearest ancestor that
// exists: a missing key is reported where it belongs); 0 without a file.
func (c *Config) lineOf(path keyPath) int {
	if c.root == nil {
		if c.path == "" {
			return 0
		}
		return 1
	}
	for len(path) > 0 {
		parent := c.find(path[:len(path)-1])
		last := path[len(path)-1]
		if parent != nil && parent.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(parent.Content); i += 2 {
				if parent.Content[i].Value == last {
					return parent.Content[i].Line
				}
			}
		}
		if parent != nil && parent.Kind == yaml.SequenceNode {
			if n := c.find(path); n != nil {
				return n.Line
			}
		}
		path = path[:len(path)-1]
	}
	return c.root.Line
}

// splitKey turns a key such as "config.items[1].role" into a keyPath.
func splitKey(key string) keyPath {
	var out keyPath
	for _, part := range strings.Split(key, ".") {
		for {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part[i:], ']')
			if j < 0 {
				break
			}
			out = append(out, part[i:i+j+1])
			part = part[i+j+1:]
		}
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

// pipelineError places a pipeline build error (a *runtime.ConfigError) at
// the line of the entry's key.
func (c *Config) pipelineError(err error) error {
	var ce *runtime.ConfigError
	if !errors.As(err, &ce) {
		return &Error{File: c.name(), Line: c.lineOf(keyPath{"pipeline"}), Key: "pipeline", Err: err}
	}
	path := keyPath{"pipeline"}
	if ce.Entry >= 0 {
		path = path.with("rules", idx(ce.Entry))
	}
	path = append(path, splitKey(ce.Key)...)
	e := c.bad(path, err).(*Error)
	if ce.Entry >= 0 && ce.Name != "" {
		e.Rule = ce.Name
	}
	return e
}

var yamlTypeLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// typeError turns yaml.v3's multi-line *yaml.TypeError into one error with
// the file, the line and the key.
func (c *Config) typeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return &Error{File: c.path, Err: invalidf("%s", oneLine(err.Error()))}
	}
	m := yamlTypeLineRE.FindStringSubmatch(te.Errors[0])
	if m == nil {
		return &Error{File: c.path, Err: invalidf("%s", oneLine(te.Errors[0]))}
	}
	line, _ := strconv.Atoi(m[1])
	reason := invalidf("%s", strings.Replace(m[2], "cannot unmarshal ", "cannot decode ", 1))
	if path := c.pathAtLine(c.root, nil, line); path != nil {
		return c.errAt(line, path, reason)
	}
	return &Error{File: c.path, Line: line, Err: reason}
}

// pathAtLine finds the key whose value starts on line.
func (c *Config) pathAtLine(n *yaml.Node, path keyPath, line int) keyPath {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if p := c.pathAtLine(v, path.with(k.Value), line); p != nil {
				return p
			}
			if v.Line == line || k.Line == line {
				return path.with(k.Value)
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if p := c.pathAtLine(item, path.with(idx(i)), line); p != nil {
				return p
			}
			if item.Line == line && item.Kind == yaml.ScalarNode {
				return path.with(idx(i))
			}
		}
	}
	return nil
}
