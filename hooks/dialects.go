package hooks

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Route patterns of the IdP-facing endpoints (net/http ServeMux syntax).
const (
	PatternPostLogin           = "POST /hooks/v1/post-login"
	PatternCredentialsExchange = "POST /hooks/v1/credentials-exchange"
	PatternHydraToken          = "POST /hooks/hydra/token"
	// PatternHydraRefresh takes the legacy oauth2.refresh_token_hook; the
	// token hook endpoint accepts that body too.
	PatternHydraRefresh = "POST /hooks/hydra/refresh"
	PatternZitadel      = "POST /hooks/zitadel/{function}"
	PatternSupabase     = "POST /hooks/supabase/custom-access-token"
	PatternPolicy       = "POST /api/users/{user_id}/policy/{client_id}"
)

// HooksConfig is the `hooks` section of the configuration file: which IdP
// dialects are served and their secrets. A dialect is served only when its
// section is present. Secrets come from environment variables named by the
// *_env keys; the inline keys exist for local development only.
//
//	hooks:
//	  max_body: 262144            # bytes per request body (default 256 KiB)
//	  native:                     # POST /hooks/v1/post-login, /hooks/v1/credentials-exchange
//	    callers:
//	      - name: auth0
//	        webhook_secret_env: CLAIMSMITH_AUTH0_WEBHOOK_SECRET  # whsec_… (several joined by |)
//	        bearer_key_env: CLAIMSMITH_AUTH0_BEARER_KEY
//	        mint: false           # true: every allowed login also gets minted tokens
//	  hydra:                      # POST /hooks/hydra/token (+ /hooks/hydra/refresh)
//	    header: Authorization     # Hydra's token_hook.auth.config.name
//	    api_key_env: CLAIMSMITH_HYDRA_API_KEY
//	    connection: hydra
//	  zitadel:                    # POST /hooks/zitadel/{preaccesstoken|preuserinfo}
//	    signing_key_env: CLAIMSMITH_ZITADEL_SIGNING_KEY   # the target's signingKey (several joined by |)
//	    client_id: ""             # used when Zitadel names no application
//	    connection: zitadel
//	  supabase:                   # POST /hooks/supabase/custom-access-token
//	    secret_env: CLAIMSMITH_SUPABASE_HOOK_SECRET       # v1,whsec_… (several joined by |)
//	    client_id: supabase
//	  policy:                     # POST /api/users/{user_id}/policy/{client_id}
//	    api_key_env: CLAIMSMITH_EXTENSION_API_KEY
//	    store_apikey: true        # also accept the imported extension configuration's apikey
type HooksConfig struct {
	MaxBody  int64           `yaml:"max_body"`
	Native   *NativeConfig   `yaml:"native"`
	Hydra    *HydraConfig    `yaml:"hydra"`
	Zitadel  *ZitadelConfig  `yaml:"zitadel"`
	Supabase *SupabaseConfig `yaml:"supabase"`
	Policy   *PolicyConfig   `yaml:"policy"`
}

// NativeConfig lists the callers of the native triggers.
type NativeConfig struct {
	Callers []CallerConfig `yaml:"callers"`
}

// CallerConfig is one caller of the native triggers.
type CallerConfig struct {
	Name             string `yaml:"name"`
	WebhookSecret    string `yaml:"webhook_secret"`
	WebhookSecretEnv string `yaml:"webhook_secret_env"`
	BearerKey        string `yaml:"bearer_key"`
	BearerKeyEnv     string `yaml:"bearer_key_env"`
	Mint             bool   `yaml:"mint"`
}

// HydraConfig configures the Ory Hydra token hook.
type HydraConfig struct {
	Header     string `yaml:"header"`
	APIKey     string `yaml:"api_key"`
	APIKeyEnv  string `yaml:"api_key_env"`
	Connection string `yaml:"connection"`
}

// ZitadelConfig configures Zitadel Actions v2.
type ZitadelConfig struct {
	SigningKey    string `yaml:"signing_key"`
	SigningKeyEnv string `yaml:"signing_key_env"`
	ClientID      string `yaml:"client_id"`
	Connection    string `yaml:"connection"`
}

// SupabaseConfig configures the Supabase custom access token hook.
type SupabaseConfig struct {
	Secret     string `yaml:"secret"`
	SecretEnv  string `yaml:"secret_env"`
	ClientID   string `yaml:"client_id"`
	Connection string `yaml:"connection"`
}

// PolicyConfig configures the extension's policy endpoint.
type PolicyConfig struct {
	APIKey    string `yaml:"api_key"`
	APIKeyEnv string `yaml:"api_key_env"`
	// StoreAPIKey also accepts the apikey of the imported extension
	// configuration record, so Auth0 rules keep their key unchanged.
	StoreAPIKey bool `yaml:"store_apikey"`
}

// DialectDeps are what the dialect handlers need.
type DialectDeps struct {
	Enricher runtime.Enricher
	Resolver authz.PolicyResolver // for the policy endpoint
	Settings authz.RecordReader   // for policy.store_apikey
	Minter   Minter               // nil: minting unavailable
	// Namespace is the pipeline's claim namespace (see HydraHandler.Namespace).
	Namespace string
	Log       *slog.Logger
	Now       func() time.Time
	Getenv    func(string) string // os.Getenv in production
	// Replays, when set, keeps the Standard Webhooks replay caches across
	// configuration reloads (one per native caller name and one for
	// Supabase); nil gives every build fresh caches.
	Replays *ReplayCaches
}

// ReplayCaches are the webhook replay caches of a server, by verifier,
// living as long as the server so that rebuilt handlers keep what the old
// ones saw. Create it with NewReplayCaches.
type ReplayCaches struct {
	mu sync.Mutex
	m  map[string]*ReplayCache
}

// NewReplayCaches returns an empty set.
func NewReplayCaches() *ReplayCaches { return &ReplayCaches{m: map[string]*ReplayCache{}} }

// cache returns the cache for key, creating it; nil when rc is nil.
func (rc *ReplayCaches) cache(key string) *ReplayCache {
	if rc == nil {
		return nil
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	c, ok := rc.m[key]
	if !ok {
		c = NewReplayCache(0)
		rc.m[key] = c
	}
	return c
}

// Dialects are the built IdP-facing handlers; nil ones are not served.
type Dialects struct {
	PostLogin           *NativeHandler
	CredentialsExchange *NativeHandler
	Hydra               *HydraHandler
	Zitadel             *ZitadelHandler
	Supabase            *SupabaseHandler
	Policy              *PolicyHandler
}

// Register adds every configured handler through handle (for example
// (*http.ServeMux).Handle).
func (d *Dialects) Register(handle func(pattern string, h http.Handler)) {
	if d.PostLogin != nil {
		handle(PatternPostLogin, d.PostLogin)
	}
	if d.CredentialsExchange != nil {
		handle(PatternCredentialsExchange, d.CredentialsExchange)
	}
	if d.Hydra != nil {
		handle(PatternHydraToken, d.Hydra)
		handle(PatternHydraRefresh, d.Hydra)
	}
	if d.Zitadel != nil {
		handle(PatternZitadel, d.Zitadel)
	}
	if d.Supabase != nil {
		handle(PatternSupabase, d.Supabase)
	}
	if d.Policy != nil {
		handle(PatternPolicy, d.Policy)
	}
}

// Routes lists the configured handlers for the server's route table (see
// Endpoints.Extra), each with the hooks' body limit.
func (d *Dialects) Routes(maxBody int64) []Route {
	var out []Route
	d.Register(func(pattern string, h http.Handler) {
		out = append(out, Route{Pattern: pattern, Handler: h, MaxBody: maxBody})
	})
	return out
}

// secret returns the inline value or the named environment variable's; the
// error names the config key.
func secret(deps DialectDeps, key, inline, env string) (string, error) {
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

// Build validates the configuration and builds the handlers. Errors name the
// key (hooks.hydra.api_key_env, …).
func (c *HooksConfig) Build(deps DialectDeps) (*Dialects, error) {
	d := &Dialects{}
	if c == nil {
		return d, nil
	}
	if deps.Enricher == nil {
		return nil, fmt.Errorf("%w: hooks: no pipeline to run", runtime.ErrInvalid)
	}
	if c.MaxBody < 0 {
		return nil, fmt.Errorf("%w: hooks.max_body: must not be negative", runtime.ErrInvalid)
	}
	if n := c.Native; n != nil {
		callers := make([]Caller, 0, len(n.Callers))
		for i, cc := range n.Callers {
			key := fmt.Sprintf("native.callers[%d]", i)
			if cc.Name == "" {
				return nil, fmt.Errorf("%w: hooks.%s.name: required", runtime.ErrInvalid, key)
			}
			caller := Caller{Name: cc.Name, Mint: cc.Mint}
			ws, err := secret(deps, key+".webhook_secret", cc.WebhookSecret, cc.WebhookSecretEnv)
			if err != nil {
				return nil, err
			}
			if ws != "" {
				if caller.Webhook, err = NewWebhookVerifier(ws, WebhookOptions{Now: deps.Now, Replay: deps.Replays.cache("native/" + cc.Name)}); err != nil {
					return nil, fmt.Errorf("hooks.%s.webhook_secret: %w", key, err)
				}
			}
			bk, err := secret(deps, key+".bearer_key", cc.BearerKey, cc.BearerKeyEnv)
			if err != nil {
				return nil, err
			}
			if bk != "" {
				caller.Bearer = NewKeySet(bk)
			}
			if caller.Webhook == nil && caller.Bearer == nil {
				return nil, fmt.Errorf("%w: hooks.%s (%s): needs a webhook secret or a bearer key", runtime.ErrInvalid, key, cc.Name)
			}
			callers = append(callers, caller)
		}
		if len(callers) == 0 {
			return nil, fmt.Errorf("%w: hooks.native.callers: at least one caller is required", runtime.ErrInvalid)
		}
		for _, t := range []runtime.Trigger{runtime.TriggerPostLogin, runtime.TriggerCredentialsExchange} {
			h := &NativeHandler{Trigger: t, Enricher: deps.Enricher, Callers: callers, Minter: deps.Minter, MaxBody: c.MaxBody, Log: deps.Log}
			if t == runtime.TriggerPostLogin {
				d.PostLogin = h
			} else {
				d.CredentialsExchange = h
			}
		}
	}
	if hc := c.Hydra; hc != nil {
		k, err := secret(deps, "hydra.api_key", hc.APIKey, hc.APIKeyEnv)
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, fmt.Errorf("%w: hooks.hydra.api_key_env: required", runtime.ErrInvalid)
		}
		d.Hydra = &HydraHandler{Enricher: deps.Enricher, Header: hc.Header, Keys: NewKeySet(splitSecrets(k)...), Connection: hc.Connection, Namespace: deps.Namespace, MaxBody: c.MaxBody, Log: deps.Log}
	}
	if zc := c.Zitadel; zc != nil {
		k, err := secret(deps, "zitadel.signing_key", zc.SigningKey, zc.SigningKeyEnv)
		if err != nil {
			return nil, err
		}
		v, err := NewZitadelVerifier(splitSecrets(k), 0, deps.Now)
		if err != nil {
			return nil, fmt.Errorf("hooks.zitadel.signing_key_env: %w", err)
		}
		d.Zitadel = &ZitadelHandler{Enricher: deps.Enricher, Verifier: v, ClientID: zc.ClientID, Connection: zc.Connection, MaxBody: c.MaxBody, Log: deps.Log}
	}
	if sc := c.Supabase; sc != nil {
		k, err := secret(deps, "supabase.secret", sc.Secret, sc.SecretEnv)
		if err != nil {
			return nil, err
		}
		v, err := NewWebhookVerifier(k, WebhookOptions{Now: deps.Now, Replay: deps.Replays.cache("supabase")})
		if err != nil {
			return nil, fmt.Errorf("hooks.supabase.secret_env: %w", err)
		}
		d.Supabase = &SupabaseHandler{Enricher: deps.Enricher, Verifier: v, ClientID: sc.ClientID, Connection: sc.Connection, MaxBody: c.MaxBody, Log: deps.Log}
	}
	if pc := c.Policy; pc != nil {
		if deps.Resolver == nil {
			return nil, fmt.Errorf("%w: hooks.policy: no authorization store", runtime.ErrInvalid)
		}
		k, err := secret(deps, "policy.api_key", pc.APIKey, pc.APIKeyEnv)
		if err != nil {
			return nil, err
		}
		ph := &PolicyHandler{Resolver: deps.Resolver, Keys: NewKeySet(splitSecrets(k)...), MaxBody: c.MaxBody, Log: deps.Log}
		if pc.StoreAPIKey {
			if deps.Settings == nil {
				return nil, fmt.Errorf("%w: hooks.policy.store_apikey: the store cannot be read", runtime.ErrInvalid)
			}
			ph.Settings = deps.Settings
		}
		if ph.Keys.Len() == 0 && ph.Settings == nil {
			return nil, fmt.Errorf("%w: hooks.policy.api_key_env: required (or store_apikey: true)", runtime.ErrInvalid)
		}
		d.Policy = ph
	}
	return d, nil
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
