package setup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// TokensConfig is the `tokens` section of the configuration file. Every key
// is optional; the comments give the defaults.
//
//	tokens:
//	  issuer: https://auth.example.com     # default http(s)://<server.addr>
//	  algorithm: RS256                     # RS256 | PS256 | ES256 | EdDSA, for new keys
//	  rsa_bits: 2048
//	  propagation_delay: 1h                # a rotated-in key is published this long before it signs
//	  key_reload: 30s                      # how often serve re-reads the key store (picks up `keys rotate`)
//	  leeway: 10s                          # clock skew allowed on exp, nbf, iat
//	  lifetimes: {id_token: 1h, access_token: 1h}
//	  clients:                             # per-client lifetimes
//	    my-spa: {access_token: 5m}
//	  introspection:
//	    namespace: https://example.com/    # of live groups/roles/permissions (default: pipeline.namespace)
//	    ignore_required_roles: false       # live answers: keep active without a required role
//	    clients:                           # who may call /oauth2/introspect and /oauth2/revoke
//	      - client_id: orders-api
//	        secret_hash: sha256:…          # `claimsmith token hash-secret` prints it
//	      - client_id: billing-api
//	        secret_env: BILLING_API_SECRET # or: the secret itself from the environment
//	        live: true                     # always answer with current authorization
//	        audiences: [https://billing.example.com] # only tokens for these APIs (default any)
type TokensConfig struct {
	Issuer           string                     `yaml:"issuer"`
	Algorithm        string                     `yaml:"algorithm"`
	RSABits          int                        `yaml:"rsa_bits"`
	PropagationDelay time.Duration              `yaml:"propagation_delay"`
	KeyReload        time.Duration              `yaml:"key_reload"`
	Leeway           *time.Duration             `yaml:"leeway"`
	Lifetimes        token.Lifetimes            `yaml:"lifetimes"`
	Clients          map[string]token.Lifetimes `yaml:"clients"`
	Introspection    IntrospectionConfig        `yaml:"introspection"`
}

// IntrospectionConfig is tokens.introspection.
type IntrospectionConfig struct {
	Namespace           string                `yaml:"namespace"`
	IgnoreRequiredRoles bool                  `yaml:"ignore_required_roles"`
	Clients             []IntrospectionClient `yaml:"clients"`
}

// IntrospectionClient is one caller of /oauth2/introspect and /oauth2/revoke.
type IntrospectionClient struct {
	token.ClientConfig `yaml:",inline"`
	// SecretEnv names an environment variable holding the secret in clear;
	// it is hashed at start-up and never logged.
	SecretEnv string `yaml:"secret_env"`
}

// tokenPlan is the tokens section checked and resolved: what the key set,
// minter, verifier and introspector are built from.
type tokenPlan struct {
	minter    token.MinterConfig
	keys      token.KeySetConfig
	leeway    time.Duration
	keyReload time.Duration
	clients   *token.Clients
	intro     token.IntrospectorConfig
}

// tokenPlan validates the tokens section (with the secrets the environment
// holds) and resolves its defaults. Validate and the builders both call it,
// so `check` refuses exactly what `serve` refuses. Without clients, the
// introspection section is left out (`claimsmith keys` needs only keys).
func (c *Config) tokenPlan(getenv func(string) string, clients bool) (tokenPlan, error) {
	t := c.Tokens
	at := keyPath{"tokens"}
	issuer := t.Issuer
	if issuer == "" {
		addr := c.Server.Addr
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		scheme := "http"
		if c.Server.TLSCertFile != "" {
			scheme = "https"
		}
		issuer = scheme + "://" + addr
	}
	p := tokenPlan{minter: token.MinterConfig{Issuer: strings.TrimSuffix(issuer, "/"), Default: t.Lifetimes, Clients: t.Clients}}
	if err := token.ValidateIssuer(p.minter.Issuer); err != nil {
		key := at.with("issuer")
		if t.Issuer == "" {
			key = keyPath{"server", "addr"} // the default issuer comes from it
		}
		return p, c.bad(key, reasonOf(err))
	}
	alg := token.RS256
	if t.Algorithm != "" {
		var err error
		if alg, err = token.ParseAlgorithm(t.Algorithm); err != nil {
			return p, c.bad(at.with("algorithm"), invalidf("%q is not one of %s", t.Algorithm, algorithmList()))
		}
	}
	if t.RSABits != 0 && t.RSABits < 2048 {
		return p, c.bad(at.with("rsa_bits"), invalidf("%d is too small: at least 2048", t.RSABits))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"propagation_delay", t.PropagationDelay}, {"key_reload", t.KeyReload}} {
		if d.v < 0 {
			return p, c.bad(at.with(d.key), invalidf("must not be negative"))
		}
	}
	p.leeway = 10 * time.Second
	if t.Leeway != nil {
		if *t.Leeway < 0 {
			return p, c.bad(at.with("leeway"), invalidf("must not be negative"))
		}
		p.leeway = *t.Leeway
	}
	if t.Lifetimes.IDToken < 0 || t.Lifetimes.AccessToken < 0 {
		return p, c.bad(at.with("lifetimes"), invalidf("must not be negative"))
	}
	for id, l := range t.Clients {
		if l.IDToken < 0 || l.AccessToken < 0 {
			return p, c.bad(at.with("clients", id), invalidf("lifetimes must not be negative"))
		}
	}
	p.keyReload = t.KeyReload
	if p.keyReload == 0 {
		p.keyReload = 30 * time.Second
	}
	p.keys = token.KeySetConfig{Algorithm: alg, RSABits: t.RSABits, PropagationDelay: t.PropagationDelay,
		Retention: p.minter.MaxLifetime() + p.leeway}

	if !clients {
		return p, nil
	}
	ic := at.with("introspection")
	ccs := make([]token.ClientConfig, 0, len(t.Introspection.Clients))
	seen := map[string]bool{}
	for i, cl := range t.Introspection.Clients {
		key := ic.with("clients", idx(i))
		if cl.ClientID == "" {
			return p, c.bad(key.with("client_id"), invalidf("is required"))
		}
		if seen[cl.ClientID] {
			return p, c.bad(key.with("client_id"), invalidf("%q is listed twice", cl.ClientID))
		}
		seen[cl.ClientID] = true
		if (cl.SecretHash == "") == (cl.SecretEnv == "") {
			return p, c.bad(key, invalidf("client %q: set exactly one of secret_hash and secret_env", cl.ClientID))
		}
		if cl.SecretEnv != "" {
			secret := getenv(cl.SecretEnv)
			if secret == "" {
				return p, c.bad(key.with("secret_env"), invalidf("environment variable %s is empty or unset", cl.SecretEnv))
			}
			h, err := token.HashSecret(secret, false)
			if err != nil {
				return p, c.bad(key.with("secret_env"), reasonOf(err))
			}
			cl.SecretHash = h
		}
		if _, err := token.NewClients([]token.ClientConfig{cl.ClientConfig}); err != nil {
			var ve *runtime.ValidationError
			field := "secret_hash"
			if errors.As(err, &ve) && ve.Field != "" {
				field = ve.Field
			}
			return p, c.bad(key.with(field), reasonOf(err))
		}
		ccs = append(ccs, cl.ClientConfig)
	}
	var err error
	if p.clients, err = token.NewClients(ccs); err != nil {
		return p, c.bad(ic.with("clients"), reasonOf(err))
	}
	ns := t.Introspection.Namespace
	if ns != "" && !strings.HasPrefix(ns, "https://") && !strings.HasPrefix(ns, "http://") {
		return p, c.bad(ic.with("namespace"), invalidf("%q must be an http(s) URL prefix", ns))
	}
	if ns == "" && c.Pipeline.Namespace != "" {
		// An invalid pipeline namespace is the pipeline's to report.
		ns, _ = runtime.ParseNamespace(c.Pipeline.Namespace)
	}
	p.intro = token.IntrospectorConfig{Namespace: ns, IgnoreRequiredRoles: t.Introspection.IgnoreRequiredRoles}
	return p, nil
}

func algorithmList() string {
	var names []string
	for _, a := range token.Algorithms() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// KeySet builds the key set over the configured key store without loading
// or generating keys (`claimsmith keys` loads it; a server inits it).
func (b *Backends) KeySet(ctx context.Context) (*token.KeySet, error) {
	if _, err := b.cfg.tokenPlan(b.env.Getenv, false); err != nil {
		return nil, err
	}
	store, err := b.KeyStore(ctx)
	if err != nil {
		return nil, err
	}
	return b.keySet(store)
}

func (b *Backends) keySet(store token.KeyStore) (*token.KeySet, error) {
	p, err := b.cfg.tokenPlan(b.env.Getenv, false)
	if err != nil {
		return nil, err
	}
	ks, err := token.NewKeySet(store, p.keys, b.env.Now, b.env.Log)
	if err != nil {
		return nil, b.cfg.bad(keyPath{"tokens"}, err)
	}
	return ks, nil
}

// TokenService is claimsmith's token side: keys, minting, verification,
// introspection and revocation, as the server and the token commands use it.
type TokenService struct {
	Keys         *token.KeySet
	Minter       *token.Minter
	Verifier     *token.Verifier
	Introspector *token.Introspector
	Clients      *token.Clients
	Revoked      token.RevocationList
	// KeyReload is how often a server re-reads the key store.
	KeyReload    time.Duration
	closeRevoked func() error
	keyStore     token.KeyStore // for readiness (data loss)
}

// TokenService builds the token side over the configured backends and
// initialises the key set (generating the first key when there is none).
// resolver and apps may be nil (no live introspection).
func (b *Backends) TokenService(ctx context.Context, resolver authz.PolicyResolver, apps authz.ApplicationReader) (*TokenService, error) {
	p, err := b.cfg.tokenPlan(b.env.Getenv, true)
	if err != nil {
		return nil, err
	}
	store, err := b.KeyStore(ctx)
	if err != nil {
		return nil, err
	}
	ks, err := b.keySet(store)
	if err != nil {
		return nil, err
	}
	if err := ks.Init(ctx); err != nil {
		return nil, err
	}
	s := &TokenService{Keys: ks, Clients: p.clients, KeyReload: p.keyReload, keyStore: store}
	if s.Minter, err = token.NewMinter(ks, p.minter, b.env.Now); err != nil {
		return nil, b.cfg.bad(keyPath{"tokens"}, err)
	}
	if s.Verifier, err = token.NewVerifier(ks, p.minter.Issuer, p.leeway, b.env.Now); err != nil {
		return nil, b.cfg.bad(keyPath{"tokens"}, err)
	}
	s.Revoked, s.closeRevoked, err = b.Revocations(ctx)
	if err != nil {
		return nil, err
	}
	s.Introspector, err = token.NewIntrospector(s.Verifier, ks, s.Revoked, resolver, apps, p.intro, b.env.Now, b.env.Log)
	if err != nil {
		_ = s.closeRevoked()
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return s, nil
}

// Close releases the revocation list (the file backend's file).
func (s *TokenService) Close() error {
	if s == nil || s.closeRevoked == nil {
		return nil
	}
	return s.closeRevoked()
}
