package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// tokensConfig is the `tokens` section of the configuration file. Every key
// is optional; the comments give the defaults.
//
//	tokens:
//	  issuer: https://auth.example.com     # default http://<server.addr>
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
type tokensConfig struct {
	Issuer           string                     `yaml:"issuer"`
	Algorithm        string                     `yaml:"algorithm"`
	RSABits          int                        `yaml:"rsa_bits"`
	PropagationDelay time.Duration              `yaml:"propagation_delay"`
	KeyReload        time.Duration              `yaml:"key_reload"`
	Leeway           *time.Duration             `yaml:"leeway"`
	Lifetimes        token.Lifetimes            `yaml:"lifetimes"`
	Clients          map[string]token.Lifetimes `yaml:"clients"`
	Introspection    struct {
		Namespace           string                `yaml:"namespace"`
		IgnoreRequiredRoles bool                  `yaml:"ignore_required_roles"`
		Clients             []introspectionClient `yaml:"clients"`
	} `yaml:"introspection"`
}

type introspectionClient struct {
	token.ClientConfig `yaml:",inline"`
	// SecretEnv names an environment variable holding the secret in clear;
	// it is hashed at start-up and never logged.
	SecretEnv string `yaml:"secret_env"`
}

// fileSections is what claimsmith's token side reads from the config file
// (loaded strictly by loadConfig): its own sections and pipeline.namespace
// as the default namespace of live introspection claims.
type fileSections struct {
	Server    hooks.ServerConfig
	Tokens    tokensConfig
	Namespace string
	// lc is the whole loaded file; nil without --config.
	lc *loadedConfig
}

// loadSections loads the config file (none: every default).
func loadSections(path string) (fileSections, error) {
	if path == "" {
		return fileSections{}, nil
	}
	lc, err := loadConfig(path)
	if err != nil {
		return fileSections{}, err
	}
	return fileSections{Server: lc.cfg.Server, Tokens: lc.cfg.Tokens, Namespace: lc.cfg.Pipeline.Namespace, lc: lc}, nil
}

// tokenService is claimsmith's token side, built once by serve and the
// token/keys commands.
type tokenService struct {
	cfg      fileSections
	keys     *token.KeySet
	minter   *token.Minter
	verifier *token.Verifier
	intro    *token.Introspector
	clients  *token.Clients
	revoked  token.RevocationList
	// closeRevoked releases the revocation list (the file backend's file).
	closeRevoked func() error
	keyReload    time.Duration
}

// keySetFor builds the key set over the configured key store (<data-dir>/keys,
// or Redis with store.backend redis) from the configuration.
func keySetFor(ctx context.Context, a *app, cfg fileSections) (*token.KeySet, token.MinterConfig, time.Duration, error) {
	t := cfg.Tokens
	issuer := t.Issuer
	if issuer == "" {
		addr := cfg.Server.Addr
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		scheme := "http"
		if cfg.Server.TLSCertFile != "" {
			scheme = "https"
		}
		issuer = scheme + "://" + addr
	}
	mc := token.MinterConfig{Issuer: strings.TrimSuffix(issuer, "/"), Default: t.Lifetimes, Clients: t.Clients}
	if err := token.ValidateIssuer(mc.Issuer); err != nil {
		return nil, mc, 0, err
	}
	leeway := 10 * time.Second
	if t.Leeway != nil {
		leeway = *t.Leeway
	}
	alg := token.RS256
	if t.Algorithm != "" {
		var err error
		if alg, err = token.ParseAlgorithm(t.Algorithm); err != nil {
			return nil, mc, 0, fmt.Errorf("config: tokens.algorithm: %w", err)
		}
	}
	store, err := openKeyStore(ctx, a, backendsOf(cfg.lc))
	if err != nil {
		return nil, mc, 0, err
	}
	ks, err := token.NewKeySet(store, token.KeySetConfig{Algorithm: alg, RSABits: t.RSABits, PropagationDelay: t.PropagationDelay,
		Retention: mc.MaxLifetime() + leeway}, time.Now, a.log)
	return ks, mc, leeway, err
}

// newTokenService builds everything; resolver and apps may be nil (no live
// introspection).
func newTokenService(ctx context.Context, a *app, cfg fileSections, resolver authz.PolicyResolver, apps authz.ApplicationReader) (*tokenService, error) {
	ks, mc, leeway, err := keySetFor(ctx, a, cfg)
	if err != nil {
		return nil, err
	}
	if err := ks.Init(ctx); err != nil {
		return nil, err
	}
	s := &tokenService{cfg: cfg, keys: ks, keyReload: cfg.Tokens.KeyReload}
	if s.keyReload == 0 {
		s.keyReload = 30 * time.Second
	}
	if s.minter, err = token.NewMinter(ks, mc, time.Now); err != nil {
		return nil, err
	}
	if s.verifier, err = token.NewVerifier(ks, mc.Issuer, leeway, time.Now); err != nil {
		return nil, err
	}
	var ccs []token.ClientConfig
	for i, c := range cfg.Tokens.Introspection.Clients {
		if (c.SecretHash == "") == (c.SecretEnv == "") {
			return nil, fmt.Errorf("%w: config: tokens.introspection.clients[%d] (%s): set exactly one of secret_hash and secret_env", runtime.ErrInvalid, i, c.ClientID)
		}
		if c.SecretEnv != "" {
			secret := os.Getenv(c.SecretEnv)
			if secret == "" {
				return nil, fmt.Errorf("%w: config: tokens.introspection.clients[%d] (%s): environment variable %s is empty", runtime.ErrInvalid, i, c.ClientID, c.SecretEnv)
			}
			if c.SecretHash, err = token.HashSecret(secret, false); err != nil {
				return nil, err
			}
		}
		ccs = append(ccs, c.ClientConfig)
	}
	if s.clients, err = token.NewClients(ccs); err != nil {
		return nil, fmt.Errorf("config: tokens.introspection.clients: %w", err)
	}
	s.revoked, s.closeRevoked, err = openRevocations(ctx, a, backendsOf(cfg.lc))
	if err != nil {
		return nil, err
	}
	ns := cfg.Tokens.Introspection.Namespace
	if ns == "" && cfg.Namespace != "" {
		if ns, err = runtime.ParseNamespace(cfg.Namespace); err != nil {
			ns = ""
		}
	}
	s.intro, err = token.NewIntrospector(s.verifier, ks, s.revoked, resolver, apps,
		token.IntrospectorConfig{Namespace: ns, IgnoreRequiredRoles: cfg.Tokens.Introspection.IgnoreRequiredRoles}, time.Now, a.log)
	if err != nil {
		_ = s.closeRevoked()
		return nil, err
	}
	return s, nil
}

func (s *tokenService) Close() error {
	if s == nil || s.closeRevoked == nil {
		return nil
	}
	return s.closeRevoked()
}

var errUsage = errors.New("usage")
