package login

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Config is the `hooks` section of the configuration file: which IdP
// dialects are served and their secrets (Help shows every section). A
// dialect is served only when its section is present. Secrets come from
// environment variables named by the *_env keys; the inline keys exist for
// local development only.
type Config struct {
	MaxBody int64 `yaml:"max_body"`
	// ReplayRate is the peak signed logins per second one signed caller
	// (native caller, Supabase, Zitadel) is sized for (default
	// DefaultReplayRate): its in-process replay cache holds
	// ReplayCapacity(tolerance, rate) ids, and a signed login beyond that
	// is refused with 503 (never let through). With a shared replay store
	// (store.backend redis) it is unused.
	ReplayRate int `yaml:"replay_rate"`
	// BodyBudget bounds, in bytes, the memory held by request bodies being
	// read before their sender is authenticated (signed webhooks; default
	// hooks.DefaultBodyBudget): over it, such requests get 503 with
	// Retry-After at once. Callers with a bearer or API key read outside it.
	BodyBudget int64           `yaml:"body_budget"`
	Native     *NativeConfig   `yaml:"native"`
	Hydra      *HydraConfig    `yaml:"hydra"`
	Zitadel    *ZitadelConfig  `yaml:"zitadel"`
	Supabase   *SupabaseConfig `yaml:"supabase"`
	Policy     *PolicyConfig   `yaml:"policy"`
}

// Deps are what the dialect handlers need.
type Deps struct {
	Enricher runtime.Enricher
	Resolver authz.PolicyResolver // for the policy endpoint
	Settings authz.RecordReader   // for policy.store_apikey
	Minter   Minter               // nil: minting unavailable
	// Namespace is the pipeline's claim namespace (see HydraConfig).
	Namespace string
	Log       *slog.Logger
	Now       func() time.Time
	Getenv    func(string) string // os.Getenv in production
	// Replays, when set, is the server's replay state, kept across
	// configuration reloads (one cache per native caller name, one for
	// Supabase, one for Zitadel; or the shared store); nil gives every
	// build fresh in-process caches.
	Replays *ReplayCaches
	// BodyBudget, when set, is the server's budget of unauthenticated
	// bodies in flight, kept across reloads (resized to hooks.body_budget);
	// nil: every build gets its own.
	BodyBudget *hooks.BodyBudget
	// replayCapacity is each webhook verifier's replay cache bound
	// (Config.Build sets it from hooks.replay_rate).
	replayCapacity int
}

// Set is the built handlers by route pattern; routes of dialects that are
// not configured are absent.
type Set struct {
	patterns []string
	handlers map[string]*Handler
}

// Handler returns the handler of pattern, nil when it is not served.
func (s *Set) Handler(pattern string) *Handler { return s.handlers[pattern] }

// Register adds every configured handler through handle (for example
// (*http.ServeMux).Handle).
func (s *Set) Register(handle func(pattern string, h http.Handler)) {
	for _, p := range s.patterns {
		handle(p, s.handlers[p])
	}
}

// Routes lists the configured handlers for the server's route table, each
// labelled with its dialect and with the hooks' body limit.
func (s *Set) Routes(maxBody int64) []hooks.Route {
	out := make([]hooks.Route, 0, len(s.patterns))
	for _, p := range s.patterns {
		h := s.handlers[p]
		out = append(out, hooks.Route{Pattern: p, Handler: h, MaxBody: maxBody, Label: h.Name})
	}
	return out
}

// Build validates the configuration and builds the handlers of every
// configured dialect. Errors name the key (hooks.hydra.api_key_env, …).
func (c *Config) Build(deps Deps) (*Set, error) {
	s := &Set{handlers: map[string]*Handler{}}
	if c == nil {
		return s, nil
	}
	if deps.Enricher == nil {
		return nil, fmt.Errorf("%w: hooks: no pipeline to run", runtime.ErrInvalid)
	}
	if c.MaxBody < 0 {
		return nil, fmt.Errorf("%w: hooks.max_body: must not be negative", runtime.ErrInvalid)
	}
	if c.ReplayRate < 0 {
		return nil, fmt.Errorf("%w: hooks.replay_rate: must not be negative", runtime.ErrInvalid)
	}
	if c.BodyBudget < 0 {
		return nil, fmt.Errorf("%w: hooks.body_budget: must not be negative", runtime.ErrInvalid)
	}
	deps.replayCapacity = ReplayCapacity(DefaultWebhookTolerance, c.ReplayRate)
	budget := deps.BodyBudget
	if budget == nil {
		budget = hooks.NewBodyBudget(c.BodyBudget)
	}
	budget.SetLimit(c.BodyBudget)
	for _, k := range Kinds() {
		hs, err := k.Build(c, deps)
		if err != nil {
			return nil, err
		}
		if hs == nil {
			continue
		}
		if len(hs) != len(k.Routes) {
			return nil, fmt.Errorf("dialect %s built %d handlers for %d routes", k.Name, len(hs), len(k.Routes))
		}
		for i, h := range hs {
			h.Name, h.MaxBody, h.Log, h.Budget = k.Name, c.MaxBody, deps.Log, budget
			if h.Run == nil {
				h.Run = deps.Enricher
			}
			s.patterns = append(s.patterns, k.Routes[i].Pattern)
			s.handlers[k.Routes[i].Pattern] = h
		}
	}
	return s, nil
}

// section is one dialect's part of the hooks configuration.
type section interface {
	// secret names the section's one secret: its key under hooks (for
	// errors), the inline value and the environment variable; "" key: the
	// section reads its own secrets.
	secret() (key, inline, env string)
	// build makes the handlers of the Kind's routes, indexed like them.
	build(deps Deps, secret string) ([]*Handler, error)
}

// fromSection is a Kind's Build for the section get returns: nothing when
// it is absent, else its handlers built with its secret read.
func fromSection[T any, S interface {
	*T
	section
}](get func(*Config) S) func(*Config, Deps) ([]*Handler, error) {
	return func(c *Config, deps Deps) ([]*Handler, error) {
		s := get(c)
		if s == nil {
			return nil, nil
		}
		var sec string
		if key, inline, env := s.secret(); key != "" {
			var err error
			if sec, err = secret(deps, key, inline, env); err != nil {
				return nil, err
			}
		}
		return s.build(deps, sec)
	}
}

// secret returns the inline value or the named environment variable's; the
// error names the config key.
func secret(deps Deps, key, inline, env string) (string, error) {
	if env != "" {
		get := deps.Getenv
		if get == nil {
			return "", fmt.Errorf("%w: hooks.%s_env: no environment available", runtime.ErrInvalid, key)
		}
		v := get(env)
		if v == "" {
			return "", fmt.Errorf("%w: hooks.%s_env: environment variable %s is empty or unset", runtime.ErrInvalid, key, env)
		}
		return v, nil
	}
	return inline, nil
}

// splitSecrets splits "|"-joined keys (several are valid during a rotation).
func splitSecrets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, "|") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// stringList returns the strings of a JSON array (other items skipped).
func stringList(v any) []string {
	arr, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// headerKey is embedded in the exchanges of the dialects whose key
// travels in a header (Hydra, the policy endpoint): Accept checked it, the
// body has nothing to verify.
type headerKey struct{}

func (headerKey) headerAuthenticated() bool { return true }

func (headerKey) Verify(context.Context, []byte) (func(context.Context), error) { return nil, nil }
