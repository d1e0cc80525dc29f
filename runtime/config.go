package runtime

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the pipeline configuration. They are documented in
// samples/config/claimsmith.yaml; change both together.
const (
	// DefaultRuleTimeout bounds one call of a built-in (native Go) rule.
	DefaultRuleTimeout = 100 * time.Millisecond
	// DefaultModuleTimeout bounds one call of a WebAssembly rule: a guest
	// call costs more than a Go call, and the first call of a pooled
	// instance may still fault pages in.
	DefaultModuleTimeout = 500 * time.Millisecond
	// DefaultBudget bounds a whole run. Auth0 allowed 20 s per flow; IdPs
	// calling a webhook time out far sooner (Supabase 5 s), so claimsmith
	// answers within 2 s or not at all.
	DefaultBudget = 2 * time.Second
	// DefaultClaimsBudget is the byte budget of one token's custom claims
	// (their JSON object). 4096 bytes become 5462 base64url characters,
	// leaving about 2.7 KiB of an 8 KiB token for the header, the standard
	// claims and a signature as large as RS4096's (683 characters).
	DefaultClaimsBudget = 4096
)

// PipelineConfig is the `pipeline` section of the configuration file. It is
// plain data; NewPipeline validates it and reports a *ConfigError.
type PipelineConfig struct {
	// Precedence settles a conflict between allow and deny votes: "deny"
	// (default; a deny also stops the pipeline, as in Auth0) or "allow".
	Precedence string `yaml:"precedence" json:"precedence,omitempty"`
	// Default applies when every rule abstains: "allow" (default, as Auth0)
	// or "deny".
	Default string `yaml:"default" json:"default,omitempty"`
	// Timeout is the budget of a whole run (Go duration, default 2s).
	Timeout string `yaml:"timeout" json:"timeout,omitempty"`
	// Namespace prefixes custom claims, an http(s) URL such as
	// "https://example.com/" ("/" is appended when missing).
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// AllowUnnamespaced lets rules set bare groups, roles and permissions
	// claims, for IdPs that nest custom claims anyway (Hydra's ext).
	AllowUnnamespaced bool `yaml:"allow_unnamespaced" json:"allow_unnamespaced,omitempty"`
	// ClaimsBudget caps each token's custom claims.
	ClaimsBudget BudgetConfig `yaml:"claims_budget" json:"claims_budget,omitempty"`
	// Rules run in this order.
	Rules []RuleEntry `yaml:"rules" json:"rules"`
}

// BudgetConfig is the custom-claim byte budget per token and what happens
// past it.
type BudgetConfig struct {
	// IDToken and AccessToken are byte budgets of the JSON object of custom
	// claims (0: DefaultClaimsBudget; -1: no budget).
	IDToken     int `yaml:"id_token" json:"id_token,omitempty"`
	AccessToken int `yaml:"access_token" json:"access_token,omitempty"`
	// Overflow is "drop" (default: drop the Drop claims in order, then set
	// <namespace>authz_overflow: true) or "deny" (deny the login).
	Overflow string `yaml:"overflow" json:"overflow,omitempty"`
	// Drop lists the claims that may be dropped, first first. Names are
	// relative to the namespace unless they are http(s) URLs. Default:
	// permissions, roles, groups.
	Drop []string `yaml:"drop" json:"drop,omitempty"`
}

// RuleEntry is one step of the pipeline: a built-in rule (Rule), a
// WebAssembly module (Wasm) or an Auth0 Rule or Action in JavaScript (JS),
// exactly one of them.
type RuleEntry struct {
	// Name identifies the step in traces and errors (default: the rule id
	// or the module's file name without .wasm). Names are unique.
	Name string `yaml:"name" json:"name,omitempty"`
	Rule string `yaml:"rule" json:"rule,omitempty"`
	// Wasm is a .wasm file, relative to the configuration file's folder.
	Wasm string `yaml:"wasm" json:"wasm,omitempty"`
	// JS is a .js file (an Auth0 Rule or Action), relative to the
	// configuration file's folder.
	JS string `yaml:"js" json:"js,omitempty"`
	// Secrets names environment variables whose values a JavaScript rule
	// gets as event.secrets (Actions) and in configuration (Rules).
	Secrets []string `yaml:"secrets" json:"secrets,omitempty"`
	// Config is the rule's own settings, strictly decoded by the rule.
	Config map[string]any `yaml:"config" json:"config,omitempty"`
	// Timeout bounds one call (Go duration; defaults DefaultRuleTimeout,
	// DefaultModuleTimeout).
	Timeout string `yaml:"timeout" json:"timeout,omitempty"`
	// OnError is "deny" (default: fail closed) or "skip".
	OnError string `yaml:"on_error" json:"on_error,omitempty"`
	// Memory caps a module's linear memory ("64MiB", "512KiB", bytes);
	// modules only.
	Memory string `yaml:"memory" json:"memory,omitempty"`
	// AllowedHosts are the hosts a module may reach over HTTP; modules only.
	AllowedHosts []string `yaml:"allowed_hosts" json:"allowed_hosts,omitempty"`
	// PoolSize is the number of warm module instances; modules only.
	PoolSize int `yaml:"pool_size" json:"pool_size,omitempty"`
}

// ConfigError is a bad pipeline configuration. It names the rule entry (its
// index in `rules` and its name; Entry is -1 for pipeline-level keys) and the
// key, as a dotted path relative to the entry or to the pipeline section
// (e.g. "config.claims.groups", "timeout"). It matches ErrInvalid.
type ConfigError struct {
	Entry int
	Name  string
	Key   string
	Err   error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("pipeline")
	if e.Entry >= 0 {
		fmt.Fprintf(&b, ".rules[%d]", e.Entry)
		if e.Name != "" {
			fmt.Fprintf(&b, " (%s)", strconv.Quote(e.Name))
		}
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %q", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(oneLine(e.Err.Error()))
	return b.String()
}

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is reports ErrInvalid.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalid }

// SettingError is a bad rule setting: Key is a dotted path inside the rule's
// config (e.g. "hours" or "id_token.groups"). Rules return it from their
// constructors and Validate so the operator sees which key to fix. It
// matches ErrInvalid.
type SettingError struct {
	Key    string
	Reason string
}

func (e *SettingError) Error() string {
	if e.Key == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s: %s", e.Key, e.Reason)
}

// Is reports ErrInvalid.
func (e *SettingError) Is(target error) bool { return target == ErrInvalid }

// oneLine keeps an error message on one line: config errors are printed as
// exactly one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// ParseTimeout parses a positive Go duration such as "150ms". The empty
// string gives def.
func ParseTimeout(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 100ms or 2s", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", s)
	}
	return d, nil
}

// ParseByteSize parses a size such as "64MiB", "512KiB", "1GiB", "10MB" or
// a plain number of bytes. The empty string gives 0.
func ParseByteSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   uint64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
		{"B", 1},
	}
	mult := uint64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a positive size such as 64MiB", s)
	}
	if n > (1<<63)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// ParseNamespace checks a claim namespace: an absolute http or https URL
// with a host and no query or fragment. A missing trailing "/" is added so
// that namespace + "roles" reads as a URL path.
func ParseNamespace(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL such as https://example.com/", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(s, " \t\r\n#?") {
		return "", fmt.Errorf("%q must be a plain URL without user, query or fragment", s)
	}
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
}

// configErr wraps err for entry i, naming key. A SettingError from a rule's
// constructor or Validate becomes a key under "config.".
func configErr(i int, name, key string, err error) *ConfigError {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce
	}
	var se *SettingError
	if key == "config" && errors.As(err, &se) {
		if se.Key != "" {
			key = "config." + se.Key
		}
		return &ConfigError{Entry: i, Name: name, Key: key, Err: errors.New(se.Reason)}
	}
	return &ConfigError{Entry: i, Name: name, Key: key, Err: err}
}
