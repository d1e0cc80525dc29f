package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// OnError is what a rule failure (error, panic, trap, timeout, bad output)
// does to the login.
type OnError uint8

const (
	// OnErrorDeny fails closed: the login is denied, whatever the precedence,
	// and the pipeline stops. The default, as the extension's rule did.
	OnErrorDeny OnError = iota
	// OnErrorSkip logs the failure in the trace, discards the rule's
	// commands and goes on as if the rule had abstained.
	OnErrorSkip
)

func (o OnError) String() string {
	if o == OnErrorSkip {
		return "skip"
	}
	return "deny"
}

// ClientDirectory fills in what an IdP did not send about a client (Hydra
// sends only a client_id): its name and metadata such as required_roles.
// It returns an error matching ErrNotFound for an unknown client. cmd adapts
// the authorization store's ApplicationReader to it.
type ClientDirectory interface {
	LookupClient(ctx context.Context, clientID string) (Client, error)
}

// Deps are what NewPipeline needs besides the configuration.
type Deps struct {
	// Registry resolves `rule:` ids to constructors. Required.
	Registry *Registry
	// Modules compiles `wasm:` entries; nil makes such entries an error.
	Modules ModuleLoader
	// Scripts loads `js:` entries (runtime/js); nil makes such entries an
	// error.
	Scripts ModuleLoader
	// Profiles, when set, is merged into each event before the run and
	// receives the run's metadata patches after it.
	Profiles ProfileStore
	// Clients, when set, fills in a client's missing name and metadata.
	Clients ClientDirectory
	// Logger receives rule failures and panics (default: discard).
	Logger *slog.Logger
	// Now is the clock for deadlines and trace durations (default time.Now).
	Now func() time.Time
	// BaseDir is the configuration file's folder; `wasm:` and `js:` paths are
	// relative to it.
	BaseDir string
}

// step is one configured rule, ready to run.
type step struct {
	name    string
	kind    string // the rule id, "wasm" or "js"
	rule    Rule
	timeout time.Duration
	onError OnError
}

// Pipeline runs login events through the configured rules. It implements
// Enricher and is safe for concurrent use. Build it with NewPipeline and
// release it with Close.
type Pipeline struct {
	steps  []step
	matrix Matrix
	budget time.Duration

	namespace         string
	allowUnnamespaced bool
	idBudget          int // bytes; <0 none
	atBudget          int
	overflowDeny      bool
	drop              []string // full claim names, in drop order
	dropDefault       bool     // drop was not configured
	overflowClaim     string

	profiles ProfileStore
	clients  ClientDirectory
	log      *slog.Logger
	now      func() time.Time

	// cmds recycles the Commands a rule writes into: one per concurrent run.
	cmds sync.Pool
}

var _ Enricher = (*Pipeline)(nil)

// StepInfo describes one configured step (for `claimsmith check`).
type StepInfo struct {
	Name    string
	Kind    string
	Timeout time.Duration
	OnError OnError
}

// NewPipeline validates cfg, constructs every rule through deps.Registry
// (or deps.Modules for `wasm:` entries) with its strictly decoded settings,
// then provisions and validates it. Any failure is a *ConfigError naming
// the entry and key; rules built so far are cleaned up.
func NewPipeline(ctx context.Context, cfg PipelineConfig, deps Deps) (*Pipeline, error) {
	if deps.Registry == nil {
		return nil, fmt.Errorf("%w: pipeline needs a rule registry", ErrInvalid)
	}
	p := &Pipeline{
		profiles: deps.Profiles,
		clients:  deps.Clients,
		log:      deps.Logger,
		now:      deps.Now,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.cmds.New = func() any { return new(Commands) }
	if err := p.configure(cfg); err != nil {
		return nil, err
	}

	names := make(map[string]int, len(cfg.Rules))
	for i := range cfg.Rules {
		s, err := p.buildStep(ctx, i, cfg.Rules[i], deps, names)
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		p.steps = append(p.steps, s)
	}
	p.defaultDrop()
	for _, s := range p.steps {
		if s.timeout > p.budget {
			// Caught after building so the error names the entry; a rule
			// allowed longer than the whole run is a configuration mistake.
			i := names[s.name]
			_ = p.Close()
			return nil, configErr(i, s.name, "timeout", fmt.Errorf("%s is longer than the pipeline timeout %s", s.timeout, p.budget))
		}
	}
	return p, nil
}

// configure checks the pipeline-level keys.
func (p *Pipeline) configure(cfg PipelineConfig) error {
	pe := func(key string, err error) error { return configErr(-1, "", key, err) }
	var err error
	var key string
	if p.matrix, key, err = ParseMatrix(cfg.Precedence, cfg.Default); err != nil {
		return pe(key, err)
	}
	if p.budget, err = ParseTimeout(cfg.Timeout, DefaultBudget); err != nil {
		return pe("timeout", err)
	}
	p.allowUnnamespaced = cfg.AllowUnnamespaced
	switch {
	case cfg.Namespace != "":
		if p.namespace, err = ParseNamespace(cfg.Namespace); err != nil {
			return pe("namespace", err)
		}
	case !cfg.AllowUnnamespaced && len(cfg.Rules) > 0:
		return pe("namespace", errors.New("required: an http(s) URL such as https://example.com/ (or set allow_unnamespaced: true)"))
	}
	b := cfg.ClaimsBudget
	budget := func(key string, v int) (int, error) {
		switch {
		case v == 0:
			return DefaultClaimsBudget, nil
		case v == -1:
			return -1, nil
		case v < 64:
			return 0, pe("claims_budget."+key, fmt.Errorf("%d is not a byte budget of at least 64 (or -1 for none)", v))
		}
		return v, nil
	}
	if p.idBudget, err = budget("id_token", b.IDToken); err != nil {
		return err
	}
	if p.atBudget, err = budget("access_token", b.AccessToken); err != nil {
		return err
	}
	switch b.Overflow {
	case "", "drop":
	case "deny":
		p.overflowDeny = true
	default:
		return pe("claims_budget.overflow", fmt.Errorf("%q is not one of drop, deny", b.Overflow))
	}
	drop := b.Drop
	if drop == nil {
		// Replaced by the authorization rule's own claim names once the
		// rules are built (defaultDrop).
		p.dropDefault = true
		drop = []string{"permissions", "roles", "groups"}
	}
	for i, d := range drop {
		if strings.TrimSpace(d) == "" {
			return pe(fmt.Sprintf("claims_budget.drop[%d]", i), errors.New("empty claim name"))
		}
		p.drop = append(p.drop, p.claimName(d))
	}
	p.overflowClaim = p.claimName("authz_overflow")
	return nil
}

// claimName puts a claim name under the namespace unless it is a URL already.
func (p *Pipeline) claimName(n string) string {
	if strings.HasPrefix(n, "http://") || strings.HasPrefix(n, "https://") {
		return n
	}
	return p.namespace + n
}

func (p *Pipeline) buildStep(ctx context.Context, i int, e RuleEntry, deps Deps, names map[string]int) (step, error) {
	var s step
	switch {
	case e.Rule != "" && e.Wasm != "":
		return s, configErr(i, e.Name, "wasm", errors.New("an entry names either a rule or a wasm module, not both"))
	case e.JS != "" && (e.Rule != "" || e.Wasm != ""):
		return s, configErr(i, e.Name, "js", errors.New("an entry names one of a rule, a wasm module or a js file"))
	case e.Rule == "" && e.Wasm == "" && e.JS == "":
		return s, configErr(i, e.Name, "rule", errors.New("required: a built-in rule id, a wasm module path or a js file"))
	case len(e.Secrets) > 0 && e.JS == "":
		return s, configErr(i, e.Name, "secrets", errors.New("applies to js rules only"))
	}
	s.name = e.Name
	if s.name == "" {
		switch {
		case e.Rule != "":
			s.name = e.Rule
		case e.JS != "":
			s.name = strings.TrimSuffix(filepath.Base(e.JS), ".js")
		default:
			s.name = strings.TrimSuffix(filepath.Base(e.Wasm), ".wasm")
		}
	}
	if prev, dup := names[s.name]; dup {
		return s, configErr(i, s.name, "name", fmt.Errorf("%q is already the name of rules[%d]; names must be unique", s.name, prev))
	}
	names[s.name] = i
	switch e.OnError {
	case "", "deny":
		s.onError = OnErrorDeny
	case "skip":
		s.onError = OnErrorSkip
	default:
		return s, configErr(i, s.name, "on_error", fmt.Errorf("%q is not one of deny, skip", e.OnError))
	}

	if e.Rule != "" {
		return p.buildNative(ctx, i, e, s, deps)
	}
	return p.buildModule(ctx, i, e, s, deps)
}

func (p *Pipeline) buildNative(ctx context.Context, i int, e RuleEntry, s step, deps Deps) (step, error) {
	for _, k := range []struct {
		key string
		set bool
	}{{"memory", e.Memory != ""}, {"allowed_hosts", e.AllowedHosts != nil}, {"pool_size", e.PoolSize != 0}} {
		if k.set {
			return s, configErr(i, s.name, k.key, errors.New("applies to wasm modules only"))
		}
	}
	ctor, ok := deps.Registry.Lookup(e.Rule)
	if !ok {
		return s, configErr(i, s.name, "rule", fmt.Errorf("unknown rule %q (built-in rules: %s)", e.Rule, strings.Join(deps.Registry.IDs(), ", ")))
	}
	var err error
	if s.timeout, err = ParseTimeout(e.Timeout, DefaultRuleTimeout); err != nil {
		return s, configErr(i, s.name, "timeout", err)
	}
	s.kind = e.Rule
	r, err := construct(ctor, SettingsDecoder(e.Config))
	if err != nil {
		return s, configErr(i, s.name, "config", err)
	}
	if err := lifecycle(ctx, r); err != nil {
		if c, ok := r.(CleanerUpper); ok {
			_ = c.Cleanup()
		}
		return s, configErr(i, s.name, "config", err)
	}
	s.rule = r
	return s, nil
}

// construct calls a constructor, turning a panic into an error: a broken
// rule must not take the process down at start-up either.
func construct(ctor Constructor, dec Decoder) (r Rule, err error) {
	defer func() {
		if v := recover(); v != nil {
			r, err = nil, fmt.Errorf("constructor panicked: %v", v)
		}
	}()
	r, err = ctor(dec)
	if err == nil && r == nil {
		err = errors.New("constructor returned no rule")
	}
	return r, err
}

func lifecycle(ctx context.Context, r Rule) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("provisioning panicked: %v", v)
		}
	}()
	if pr, ok := r.(Provisioner); ok {
		if err := pr.Provision(ctx); err != nil {
			return err
		}
	}
	if v, ok := r.(Validator); ok {
		return v.Validate()
	}
	return nil
}

func (p *Pipeline) buildModule(ctx context.Context, i int, e RuleEntry, s step, deps Deps) (step, error) {
	key, file, loader := "wasm", e.Wasm, deps.Modules
	if e.JS != "" {
		key, file, loader = "js", e.JS, deps.Scripts
	}
	if loader == nil {
		if key == "js" {
			return s, configErr(i, s.name, key, errors.New("JavaScript rules are not available in this command"))
		}
		return s, configErr(i, s.name, key, errors.New("WebAssembly rules are not available in this command"))
	}
	var err error
	if s.timeout, err = ParseTimeout(e.Timeout, DefaultModuleTimeout); err != nil {
		return s, configErr(i, s.name, "timeout", err)
	}
	mem, err := ParseByteSize(e.Memory)
	if err != nil {
		return s, configErr(i, s.name, "memory", err)
	}
	if e.PoolSize < 0 {
		return s, configErr(i, s.name, "pool_size", fmt.Errorf("%d is negative", e.PoolSize))
	}
	for j, h := range e.AllowedHosts {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, "/ ") {
			return s, configErr(i, s.name, fmt.Sprintf("allowed_hosts[%d]", j), fmt.Errorf("%q is not a host name", h))
		}
	}
	conf, err := moduleConfig(e.Config)
	if err != nil {
		return s, configErr(i, s.name, "config", err)
	}
	if key == "js" && len(e.AllowedHosts) > 0 {
		return s, configErr(i, s.name, "allowed_hosts", errors.New("JavaScript rules get no network"))
	}
	for j, name := range e.Secrets {
		if name == "" || strings.ContainsAny(name, "= \t") {
			return s, configErr(i, s.name, fmt.Sprintf("secrets[%d]", j), fmt.Errorf("%q is not an environment variable name", name))
		}
	}
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(deps.BaseDir, path)
	}
	spec := ModuleSpec{
		Name:         s.name,
		Path:         path,
		Timeout:      s.timeout,
		MemoryBytes:  mem,
		AllowedHosts: e.AllowedHosts,
		PoolSize:     e.PoolSize,
		Config:       conf,
		Secrets:      e.Secrets,
	}
	r, err := loader.LoadModule(ctx, spec)
	if err != nil {
		return s, configErr(i, s.name, key, err)
	}
	if r == nil {
		return s, configErr(i, s.name, key, errors.New("module loader returned no rule"))
	}
	s.kind = key
	s.rule = r
	return s, nil
}

// moduleConfig flattens a module's settings to the strings its guest reads
// with config_get: strings as they are, other values as JSON.
func moduleConfig(c map[string]any) (map[string]string, error) {
	if len(c) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(c))
	for k, v := range c {
		switch t := v.(type) {
		case string:
			out[k] = t
		case nil:
			out[k] = ""
		default:
			b, err := jsonMarshal(v)
			if err != nil {
				return nil, &SettingError{Key: k, Reason: fmt.Sprintf("not JSON-compatible: %v", err)}
			}
			out[k] = string(b)
		}
	}
	return out, nil
}

// Steps describes the configured steps in order.
func (p *Pipeline) Steps() []StepInfo {
	out := make([]StepInfo, len(p.steps))
	for i, s := range p.steps {
		out[i] = StepInfo{Name: s.name, Kind: s.kind, Timeout: s.timeout, OnError: s.onError}
	}
	return out
}

// Namespace is the configured claim namespace ("" when none).
func (p *Pipeline) Namespace() string { return p.namespace }

// Close releases every rule that acquired resources (CleanerUpper), last
// first. It is safe to call once the pipeline no longer runs.
func (p *Pipeline) Close() error {
	var errs []error
	for i := len(p.steps) - 1; i >= 0; i-- {
		if c, ok := p.steps[i].rule.(CleanerUpper); ok {
			if err := c.Cleanup(); err != nil {
				errs = append(errs, fmt.Errorf("rule %q: cleanup: %w", p.steps[i].name, err))
			}
		}
	}
	p.steps = nil
	return errors.Join(errs...)
}
