package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// hooksHelp documents the `hooks` section for `claimsmith serve -h`.
const hooksHelp = `
IdP-facing endpoints (only those configured in the hooks section are served;
secrets come from the environment variables the *_env keys name):
  POST /hooks/v1/post-login, /hooks/v1/credentials-exchange
                                          native triggers (Standard Webhooks or bearer key)
  POST /hooks/hydra/token, /hooks/hydra/refresh
                                          Ory Hydra token hook (+ legacy refresh hook)
  POST /hooks/zitadel/{preaccesstoken|preuserinfo}
                                          Zitadel Actions v2 (ZITADEL-Signature)
  POST /hooks/supabase/custom-access-token
                                          Supabase custom access token hook
  POST /api/users/{user_id}/policy/{client_id}
                                          the Authorization Extension's policy endpoint (x-api-key)

  hooks:
    max_body: 262144
    native:
      callers:
        - name: auth0
          webhook_secret_env: CLAIMSMITH_AUTH0_WEBHOOK_SECRET   # whsec_… (several joined by |)
          bearer_key_env: CLAIMSMITH_AUTH0_BEARER_KEY
          mint: false                                       # true: also mint tokens
    hydra:
      header: Authorization            # Hydra's oauth2.token_hook.auth.config.name
      api_key_env: CLAIMSMITH_HYDRA_API_KEY
      connection: hydra
    zitadel:
      signing_key_env: CLAIMSMITH_ZITADEL_SIGNING_KEY
      client_id: ""                    # when Zitadel names no application
    supabase:
      secret_env: CLAIMSMITH_SUPABASE_HOOK_SECRET            # v1,whsec_… (several joined by |)
      client_id: supabase
    policy:
      api_key_env: CLAIMSMITH_EXTENSION_API_KEY
      store_apikey: true               # also accept the imported extension's apikey
`

// serveUsage is serve's help with the hooks section placed before the flags.
func serveUsage() string {
	const flags = "Flags (override the file):"
	if before, after, ok := strings.Cut(serveHelp, flags); ok {
		return before + strings.TrimPrefix(hooksHelp, "\n") + "\n" + flags + after
	}
	return serveHelp + hooksHelp
}

// hookReloader builds the login pipeline (policies through resolver, the
// policy cache) and the IdP-facing handlers the
// configuration's hooks section asks for, behind a hooks.Reloader that
// rebuilds them from the file on SIGHUP or POST /api/reload. Without a
// config file it returns nil: there is nothing to serve or reload. A file
// without a hooks section builds no pipeline; its dialect routes answer 404
// until a reload adds the section.
func hookReloader(ctx context.Context, a *app, st pipelineStore, resolver authz.PolicyResolver, ts *tokenService, m *hooks.Metrics) (*hooks.Reloader, error) {
	if a.configPath == "" {
		return nil, nil
	}
	// start is the file as first read (before flags override it), to tell
	// which restart-only sections a reload changes.
	var start *loadedConfig
	// One set of webhook replay caches for the server's life: a reload must
	// not let an already received webhook-id through again.
	replays := hooks.NewReplayCaches()
	build := func(ctx context.Context) (*hooks.HookSet, error) {
		lc, err := loadConfig(a.configPath)
		if err != nil {
			return nil, err
		}
		if start == nil {
			start = lc
		} else {
			warnRestartOnly(ctx, a, start, lc)
		}
		hc := lc.cfg.Hooks
		if hc == nil {
			return &hooks.HookSet{}, nil
		}
		p, release, err := newPipeline(ctx, a, lc, st, pipelineOptions{resolver: resolver})
		if err != nil {
			return nil, err
		}
		d, err := hc.Build(hooks.DialectDeps{
			Enricher:  m.Enricher(p),
			Resolver:  resolver,
			Settings:  st,
			Minter:    hooks.TokenMinter{Minter: ts.minter},
			Namespace: p.Namespace(),
			Log:       a.log,
			Now:       time.Now,
			Getenv:    os.Getenv,
			Replays:   replays,
		})
		if err != nil {
			release()
			return nil, fmt.Errorf("%s: %w", a.configPath, err)
		}
		set := &hooks.HookSet{Handlers: map[string]http.Handler{}, MaxBody: hc.MaxBody, Release: release}
		d.Register(func(pattern string, h http.Handler) { set.Handlers[pattern] = h })
		for _, s := range p.Steps() {
			set.Rules = append(set.Rules, s.Name)
		}
		return set, nil
	}
	return hooks.NewReloader(ctx, build, a.log, hooks.ReloaderOptions{Metrics: m})
}

// warnRestartOnly logs the sections a reload does not apply: everything
// but pipeline and hooks (the listener, TLS, keys, introspection clients,
// store, Redis and cache are set up once at start), and the namespace the
// token side uses.
func warnRestartOnly(ctx context.Context, a *app, start, lc *loadedConfig) {
	var changed []string
	old, cur := reflect.ValueOf(start.cfg), reflect.ValueOf(lc.cfg)
	for i := range old.NumField() {
		f := old.Type().Field(i)
		if f.Name == "Pipeline" || f.Name == "Hooks" {
			continue
		}
		if !reflect.DeepEqual(old.Field(i).Interface(), cur.Field(i).Interface()) {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			changed = append(changed, name)
		}
	}
	if start.cfg.Pipeline.Namespace != lc.cfg.Pipeline.Namespace {
		changed = append(changed, "pipeline.namespace (for introspection; logins use the new one)")
	}
	if len(changed) > 0 {
		a.log.WarnContext(ctx, "configuration reload: these sections changed and take effect only at restart",
			"file", a.configPath, "sections", changed)
	}
}

// notifyReload starts catching SIGHUP (whose default action ends the
// process) as early as serve starts; stop undoes it.
func notifyReload() (hup <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// reloadOnSignal reloads on every SIGHUP until ctx ends. A rejected
// configuration is logged by the reloader; the old one keeps serving.
func reloadOnSignal(ctx context.Context, a *app, hup <-chan os.Signal, r *hooks.Reloader) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if r == nil {
				a.log.WarnContext(ctx, "SIGHUP: no configuration file (--config) to reload")
				continue
			}
			a.log.InfoContext(ctx, "SIGHUP: reloading the configuration", "file", a.configPath)
			_, _ = r.Reload(ctx)
		}
	}
}
