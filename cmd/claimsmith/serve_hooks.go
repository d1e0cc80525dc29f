package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
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

// hookRoutes builds the login pipeline and the IdP-facing handlers the
// configuration's hooks section asks for. Without a config file or a hooks
// section it returns no routes and builds nothing. release closes the
// pipeline.
func hookRoutes(ctx context.Context, a *app, st pipelineStore, ts *tokenService) ([]hooks.Route, func(), error) {
	if a.configPath == "" {
		return nil, func() {}, nil
	}
	lc, err := loadConfig(a.configPath)
	if err != nil {
		return nil, nil, err
	}
	hc := lc.cfg.Hooks
	if hc == nil {
		return nil, func() {}, nil
	}
	p, release, err := newPipeline(ctx, a, lc, st, pipelineOptions{})
	if err != nil {
		return nil, nil, err
	}
	d, err := hc.Build(hooks.DialectDeps{
		Enricher:  p,
		Resolver:  st,
		Settings:  st,
		Minter:    hooks.TokenMinter{Minter: ts.minter},
		Namespace: p.Namespace(),
		Log:       a.log,
		Now:       time.Now,
		Getenv:    os.Getenv,
	})
	if err != nil {
		release()
		return nil, nil, err
	}
	return d.Routes(hc.MaxBody), release, nil
}
