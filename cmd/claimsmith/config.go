package main

import (
	"bytes"
	"errors"
	"fmt"
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

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	redisstore "github.com/claimsmith/claimsmith/runtime/authz/redis"
)

// configFile is the whole configuration file (samples/config/claimsmith.yaml
// documents every key). Each top-level section is one field owned by one
// part of claimsmith; add a section as one more field. Decoding is strict:
// an unknown key anywhere is an error naming the file, line and key.
type configFile struct {
	// Pipeline is the login pipeline: rules, decision, limits, namespace.
	Pipeline runtime.PipelineConfig `yaml:"pipeline"`
	// Server is the HTTP server (see `claimsmith serve -h`).
	Server hooks.ServerConfig `yaml:"server"`
	// Tokens is minting, keys and introspection (see `claimsmith token -h`).
	Tokens tokensConfig `yaml:"tokens"`
	// Hooks are the IdP-facing endpoints and their secrets (see `claimsmith serve -h`).
	Hooks *hooks.HooksConfig `yaml:"hooks"`
	// Store, Redis and Cache say where the data lives and how logins cache
	// policies (stores.go documents them).
	Store storeSection      `yaml:"store"`
	Redis redisstore.Config `yaml:"redis"`
	Cache cacheSection      `yaml:"cache"`
}

// loadedConfig is a decoded configuration file with what error messages
// need: its path and its YAML tree, for line numbers.
type loadedConfig struct {
	path string
	root *yaml.Node // the document's top-level mapping; nil for an empty file
	cfg  configFile
}

// dir is the folder paths in the file are relative to (wasm modules).
func (c *loadedConfig) dir() string { return filepath.Dir(c.path) }

// loadConfig reads and strictly decodes the configuration file. Every error
// is one line: "FILE:LINE: what is wrong".
func loadConfig(path string) (*loadedConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseConfig(path, b)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseConfig is loadConfig on bytes; path names the file in errors.
func parseConfig(path string, b []byte) (*loadedConfig, error) {
	lc := &loadedConfig{path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		msg := oneLine(err.Error())
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			return nil, invalidf("%s:%s: %s", path, m[1], m[2])
		}
		return nil, invalidf("%s: %s", path, strings.TrimPrefix(msg, "yaml: "))
	}
	if len(doc.Content) == 0 {
		return lc, nil // an empty file: every default
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		fields := map[string]reflect.Type{}
		yamlKeys(reflect.TypeOf(lc.cfg), fields)
		return nil, invalidf("%s:%d: the top level must be a mapping of sections (%s)", path, root.Line, strings.Join(sortedKeys(fields), ", "))
	}
	lc.root = root
	if err := lc.checkKeys(root, reflect.TypeOf(lc.cfg), nil); err != nil {
		return nil, err
	}
	if err := root.Decode(&lc.cfg); err != nil {
		return nil, lc.typeError(err)
	}
	if err := lc.checkBackends(); err != nil {
		return nil, err
	}
	return lc, nil
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

func (p keyPath) with(s string) keyPath { return append(p[:len(p):len(p)], s) }

// checkKeys walks a YAML node along the Go type it decodes into and reports
// the first key the type does not have. yaml.v3's KnownFields reports a
// Go type name, not the entry; this names the rule entry and the key.
// Free-form values (a rule's `config`, typed map[string]any) are left to
// the rule's own strict decoder.
func (c *loadedConfig) checkKeys(n *yaml.Node, t reflect.Type, path keyPath) error {
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
				return c.keyError(k.Line, path, k.Value, fmt.Sprintf("unknown key (known: %s)", strings.Join(sortedKeys(fields), ", ")))
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
			if err := c.checkKeys(item, t.Elem(), path.with(fmt.Sprintf("[%d]", i))); err != nil {
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

// keyError formats a bad key. Inside a pipeline rule entry it names the
// entry as runtime.ConfigError does, so every pipeline error reads alike.
func (c *loadedConfig) keyError(line int, parent keyPath, key, reason string) error {
	full := parent.with(key)
	if len(full) >= 3 && full[0] == "pipeline" && full[1] == "rules" && strings.HasPrefix(full[2], "[") {
		idx, _ := strconv.Atoi(strings.Trim(full[2], "[]"))
		ce := &runtime.ConfigError{Entry: idx, Name: c.entryName(idx), Key: full[3:].String(), Err: errors.New(reason)}
		return fmt.Errorf("%s:%d: %w", c.path, line, ce)
	}
	if len(full) >= 2 && full[0] == "pipeline" {
		ce := &runtime.ConfigError{Entry: -1, Key: full[1:].String(), Err: errors.New(reason)}
		return fmt.Errorf("%s:%d: %w", c.path, line, ce)
	}
	return invalidf("%s:%d: key %q: %s", c.path, line, full.String(), reason)
}

// entryName is what a rule entry is called in errors: its name, else its
// rule id or module file, as the pipeline builder names it.
func (c *loadedConfig) entryName(idx int) string {
	entry := c.find(keyPath{"pipeline", "rules", fmt.Sprintf("[%d]", idx)})
	if entry == nil || entry.Kind != yaml.MappingNode {
		return ""
	}
	var e struct {
		Name string `yaml:"name"`
		Rule string `yaml:"rule"`
		Wasm string `yaml:"wasm"`
	}
	_ = entry.Decode(&e) // best effort, for the message only
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
func (c *loadedConfig) find(path keyPath) *yaml.Node {
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
// exists: a missing key is reported where it belongs).
func (c *loadedConfig) lineOf(path keyPath) int {
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
	if c.root != nil {
		return c.root.Line
	}
	return 1
}

// splitKey turns a ConfigError key such as "config.items[1].role" into a
// keyPath.
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

// pipelineError puts a pipeline build error on one line with the file and
// the line of the entry's key.
func (c *loadedConfig) pipelineError(err error) error {
	var ce *runtime.ConfigError
	if !errors.As(err, &ce) {
		return fmt.Errorf("%s: %w", c.path, err)
	}
	path := keyPath{"pipeline"}
	if ce.Entry >= 0 {
		path = path.with("rules").with(fmt.Sprintf("[%d]", ce.Entry))
	}
	path = append(path, splitKey(ce.Key)...)
	return fmt.Errorf("%s:%d: %w", c.path, c.lineOf(path), ce)
}

var yamlTypeLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// typeError turns yaml.v3's multi-line *yaml.TypeError into one line with
// the file, the line and the key.
func (c *loadedConfig) typeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return invalidf("%s: %s", c.path, oneLine(err.Error()))
	}
	m := yamlTypeLineRE.FindStringSubmatch(te.Errors[0])
	if m == nil {
		return invalidf("%s: %s", c.path, oneLine(te.Errors[0]))
	}
	line, _ := strconv.Atoi(m[1])
	reason := strings.Replace(m[2], "cannot unmarshal ", "cannot decode ", 1)
	if path := c.pathAtLine(c.root, nil, line); path != nil {
		return c.keyError(line, path[:len(path)-1], path[len(path)-1], reason)
	}
	return invalidf("%s:%d: %s", c.path, line, reason)
}

// pathAtLine finds the key whose value starts on line.
func (c *loadedConfig) pathAtLine(n *yaml.Node, path keyPath, line int) keyPath {
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
			if p := c.pathAtLine(item, path.with(fmt.Sprintf("[%d]", i)), line); p != nil {
				return p
			}
			if item.Line == line && item.Kind == yaml.ScalarNode {
				return path.with(fmt.Sprintf("[%d]", i))
			}
		}
	}
	return nil
}

// configFileError is a configuration error already formatted as one line
// ("FILE:LINE: what"). It matches runtime.ErrInvalid.
type configFileError struct{ msg string }

func (e *configFileError) Error() string        { return e.msg }
func (e *configFileError) Is(target error) bool { return target == runtime.ErrInvalid }

func invalidf(format string, args ...any) error {
	return &configFileError{msg: fmt.Sprintf(format, args...)}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(string(bytes.ReplaceAll([]byte(s), []byte("\n"), []byte(" ")))), " ")
}
