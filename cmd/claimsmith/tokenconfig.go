package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

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

// fileSections is what claimsmith's token side reads from the config file:
// its own sections strictly, pipeline.namespace as a default.
type fileSections struct {
	Server    hooks.ServerConfig
	Tokens    tokensConfig
	Namespace string
}

// loadSections reads the `server` and `tokens` sections of the config file
// (none: defaults). Unknown keys in them are errors naming the file, line and
// key; other top-level sections belong to other parts of claimsmith.
func loadSections(path string) (fileSections, error) {
	var out fileSections
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return out, fmt.Errorf("config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return out, fmt.Errorf("%w: config %s: %v", runtime.ErrInvalid, path, err)
	}
	if len(root.Content) == 0 {
		return out, nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return out, fmt.Errorf("%w: config %s: the top level must be a mapping", runtime.ErrInvalid, path)
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, val := doc.Content[i], doc.Content[i+1]
		var dst any
		switch key.Value {
		case "server":
			dst = &out.Server
		case "tokens":
			dst = &out.Tokens
		case "pipeline":
			var p struct {
				Namespace string `yaml:"namespace"`
			}
			_ = val.Decode(&p) // the pipeline's own loader reports its errors
			out.Namespace = p.Namespace
			continue
		default:
			continue
		}
		if err := decodeStrict(val, dst); err != nil {
			return out, fmt.Errorf("%w: config %s: %s: %v", runtime.ErrInvalid, path, key.Value, err)
		}
	}
	return out, nil
}

// decodeStrict decodes a node, refusing unknown keys with the line and the
// key path named (yaml.v3's KnownFields works on whole documents only).
func decodeStrict(n *yaml.Node, dst any) error {
	if err := checkYAMLKeys(n, reflect.TypeOf(dst), ""); err != nil {
		return err
	}
	return n.Decode(dst)
}

func checkYAMLKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return nil
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := fields[k]
			if !ok {
				known := make([]string, 0, len(fields))
				for f := range fields {
					known = append(known, f)
				}
				sort.Strings(known)
				return fmt.Errorf("line %d: unknown key %q (known: %s)", n.Content[i].Line, path+k, strings.Join(known, ", "))
			}
			if err := checkYAMLKeys(n.Content[i+1], ft, path+k+"."); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkYAMLKeys(n.Content[i+1], t.Elem(), path+n.Content[i].Value+"."); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if err := checkYAMLKeys(c, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields collects a struct's yaml keys, descending into inline fields.
func yamlFields(t reflect.Type, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			yamlFields(f.Type, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

// tokenService is claimsmith's token side, built once by serve and the
// token/keys commands.
type tokenService struct {
	cfg       fileSections
	keys      *token.KeySet
	minter    *token.Minter
	verifier  *token.Verifier
	intro     *token.Introspector
	clients   *token.Clients
	revoked   *token.FileRevocationList
	keyReload time.Duration
}

// keySetFor builds the key set over <data-dir>/keys from the configuration.
func keySetFor(a *app, cfg fileSections) (*token.KeySet, token.MinterConfig, time.Duration, error) {
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
	store, err := token.NewFileKeyStore(filepath.Join(a.dataDir, "keys"))
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
	ks, mc, leeway, err := keySetFor(a, cfg)
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
	s.revoked, err = token.OpenFileRevocationList(ctx, filepath.Join(a.dataDir, "revoked.jsonl"), time.Now)
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
		s.revoked.Close()
		return nil, err
	}
	return s, nil
}

func (s *tokenService) Close() error {
	if s == nil || s.revoked == nil {
		return nil
	}
	return s.revoked.Close()
}

var errUsage = errors.New("usage")
