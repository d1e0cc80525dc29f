package setup

import (
	"context"
	"crypto/tls"
	"errors"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	redisstore "github.com/claimsmith/claimsmith/runtime/authz/redis"
)

// Validate checks every section of the configuration with the secrets env
// holds: the store, redis and cache sections, the server (TLS pair
// readable), the tokens (issuer URL, algorithm, lifetimes, introspection
// clients and their secrets), the hooks (each dialect built with its
// secrets: a malformed whsec_ or an unset variable is refused) and the
// pipeline's namespace. It opens no store and generates nothing. The
// pipeline's rules are checked when it is built (BuildPipeline; Build and
// Check both do), because from_extension reads the store.
//
// The first problem is returned as a *Error: `FILE:LINE: key "a.b": reason`.
func (c *Config) Validate(ctx context.Context, env Env) error {
	env = env.withDefaults()
	if err := c.validateBackends(); err != nil {
		return err
	}
	if err := c.validateServer(); err != nil {
		return err
	}
	if err := c.validateGC(); err != nil {
		return err
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	if _, err := c.tokenPlan(env.Getenv, true); err != nil {
		return err
	}
	if c.Pipeline.Namespace != "" {
		if _, err := runtime.ParseNamespace(c.Pipeline.Namespace); err != nil {
			return c.bad(keyPath{"pipeline", "namespace"}, invalidf("%s", err))
		}
	}
	if _, err := c.buildDialects(ctx, env, login.Deps{Enricher: validationOnly{}, Resolver: validationOnly{}, Settings: validationOnly{}}); err != nil {
		return err
	}
	if _, err := c.buildForwardAuth(env, nil); err != nil {
		return err
	}
	if _, err := c.buildExchanger(env, nil, nil); err != nil {
		return err
	}
	return nil
}

// validateServer checks the server section as hooks.NewServer will, and
// that the TLS pair loads.
func (c *Config) validateServer() error {
	s := c.Server
	at := keyPath{"server"}
	for _, d := range []struct {
		key string
		neg bool
	}{{"read_header_timeout", s.ReadHeaderTimeout < 0}, {"read_timeout", s.ReadTimeout < 0}, {"write_timeout", s.WriteTimeout < 0},
		{"idle_timeout", s.IdleTimeout < 0}, {"shutdown_timeout", s.ShutdownTimeout < 0}, {"max_header_bytes", s.MaxHeaderBytes < 0},
		{"reload_timeout", s.ReloadTimeout < 0}} {
		if d.neg {
			return c.bad(at.with(d.key), invalidf("must not be negative"))
		}
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		key := at.with("tls_key_file")
		if s.TLSCertFile == "" {
			key = at.with("tls_cert_file")
		}
		return c.bad(key, invalidf("set both tls_cert_file and tls_key_file, or neither"))
	}
	if s.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile); err != nil {
			return c.bad(at.with("tls_cert_file"), invalidf("TLS pair %s / %s: %v", s.TLSCertFile, s.TLSKeyFile, err))
		}
	}
	return nil
}

// buildDialects builds the hooks section's handlers and places an error at
// its key: login.Config.Build names the key (hooks.native.callers[0].
// webhook_secret_env, …), this adds the file and the line.
func (c *Config) buildDialects(_ context.Context, env Env, deps login.Deps) (*login.Set, error) {
	if c.Hooks == nil {
		return (*login.Config)(nil).Build(deps)
	}
	if deps.Log == nil {
		deps.Log = env.Log
	}
	if deps.Now == nil {
		deps.Now = env.Now
	}
	if deps.Getenv == nil {
		deps.Getenv = env.Getenv
	}
	d, err := c.Hooks.Build(deps)
	if err != nil {
		return nil, c.hooksError(err)
	}
	return d, nil
}

var hooksKeyRE = regexp.MustCompile(`(hooks(?:\.[A-Za-z0-9_]+(?:\[\d+\])*)*)(?: \([^)]*\))?: (.*)$`)

// hooksError places a hooks build error at the key it names.
func (c *Config) hooksError(err error) error {
	m := hooksKeyRE.FindStringSubmatch(oneLine(err.Error()))
	if m == nil {
		return c.bad(keyPath{"hooks"}, err)
	}
	key := splitKey(m[1])
	// A secret's error names the secret; the file may hold its _env key.
	if n := len(key); n > 0 && c.find(key) == nil {
		if alt := key[:n-1].with(key[n-1] + "_env"); c.find(alt) != nil {
			key = alt
		}
	}
	var reason error = &wrapped{msg: m[2], err: err}
	return c.bad(key, reason)
}

// wrapped is a reason with its location cut off that still matches what
// the original error matched.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// validationOnly stands in for the pipeline and the store while Validate
// builds the dialect handlers: they are built to be checked, never called.
type validationOnly struct{}

func (validationOnly) Run(context.Context, *runtime.Event) (*runtime.Result, error) {
	return nil, errors.New("validation only")
}

func (validationOnly) ResolvePolicy(context.Context, authz.PolicyQuery) (authz.Policy, error) {
	return authz.Policy{}, errors.New("validation only")
}

func (validationOnly) Records(context.Context, authz.Footprint) (*authz.Document, uint64, error) {
	return nil, 0, errors.New("validation only")
}

// EnvVar is an environment variable the configuration reads.
type EnvVar struct {
	Name string
	// Key is the configuration key that names it (or the section that
	// reads it).
	Key  string
	Line int
	// Required: the configuration refuses to start without it.
	Required bool
	Set      bool
}

// EnvVars lists the environment variables the configuration reads, in file
// order: every *_env key (a secret; required) and the Redis credentials
// of the redis and cache sections (optional).
func (c *Config) EnvVars(getenv func(string) string) []EnvVar {
	if getenv == nil {
		getenv = Env{}.withDefaults().Getenv
	}
	var out []EnvVar
	var walk func(v reflect.Value, path keyPath)
	walk = func(v reflect.Value, path keyPath) {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return
			}
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "-" {
					continue
				}
				if strings.Contains(opts, "inline") {
					walk(v.Field(i), path)
					continue
				}
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				fv := v.Field(i)
				if strings.HasSuffix(name, "_env") && fv.Kind() == reflect.String {
					if n := fv.String(); n != "" {
						key := path.with(name)
						out = append(out, EnvVar{Name: n, Key: key.String(), Line: c.lineOf(key), Required: true, Set: getenv(n) != ""})
					}
					continue
				}
				walk(fv, path.with(name))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), path.with(idx(i)))
			}
		case reflect.Map:
			keys := v.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				if k.Kind() == reflect.String {
					walk(v.MapIndex(k), path.with(k.String()))
				}
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), nil)
	redisVars := func(at keyPath, user, pass string) {
		for _, n := range []string{user, pass} {
			out = append(out, EnvVar{Name: n, Key: at.String(), Line: c.lineOf(at), Set: getenv(n) != ""})
		}
	}
	if len(c.Redis.Addrs) > 0 {
		redisVars(keyPath{"redis"}, redisstore.EnvUsername, redisstore.EnvPassword)
	}
	if c.Cache.Redis != nil {
		redisVars(keyPath{"cache", "redis"}, EnvCacheRedisUsername, EnvCacheRedisPassword)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}
