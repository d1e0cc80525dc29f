package setup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/js"
	"github.com/claimsmith/claimsmith/runtime/wasm"
)

// PipelineStore is what the login pipeline needs from the authorization
// store: policies, applications (to fill in a client the IdP only named),
// the extension configuration record and the stored profiles. Every
// authz.Store provides it.
type PipelineStore interface {
	authz.PolicyResolver
	authz.ApplicationReader
	rules.ExtensionSettings
	runtime.ProfileStore
}

// PipelineOptions tune BuildPipeline for a command.
type PipelineOptions struct {
	// Now is the clock (default: the Env's); `test --now` pins it.
	Now func() time.Time
	// DryRun keeps the stored profiles unchanged: patches are computed and
	// shown, never written.
	DryRun bool
	// Resolver answers policy questions for the authorization rule and the
	// wasm host functions; nil uses the store directly (the server puts the
	// policy cache here).
	Resolver authz.PolicyResolver
	// JSCache backs the JavaScript rules' api.cache; nil: in-process, for
	// this pipeline only (the server passes one for its life, in Redis
	// when the cache section has one: see Backends.JSCache).
	JSCache js.Cache
}

// Pipeline is a built login pipeline with what it holds open.
type Pipeline struct {
	*runtime.Pipeline
	release func() error
}

// Close closes the rules and the wasm module loader.
func (p *Pipeline) Close() error { return p.release() }

// BuildPipeline builds the configuration's pipeline over st with the
// built-in rules (rules.NewRegistry), compiling its WebAssembly modules.
// Errors are *Error naming the file, line, rule entry and key.
func (c *Config) BuildPipeline(ctx context.Context, env Env, st PipelineStore, opt PipelineOptions) (*Pipeline, error) {
	env = env.withDefaults()
	if opt.Now == nil {
		opt.Now = env.Now
	}
	pc := c.Pipeline
	ns := ""
	if pc.Namespace != "" {
		// An invalid namespace is reported by NewPipeline, with its line.
		ns, _ = runtime.ParseNamespace(pc.Namespace)
	}
	resolver := opt.Resolver
	if resolver == nil {
		resolver = st
	}
	reg, err := rules.NewRegistry(rules.Deps{Resolver: resolver, Settings: st, Namespace: ns, Now: opt.Now})
	if err != nil {
		return nil, err
	}
	// Compiled modules are kept on disk (as the JS engine is), so a restart,
	// a reload or `check` does not compile every module again.
	loader := wasm.NewLoader(wasm.Options{Logger: env.Log, Authz: resolver, Now: opt.Now, CacheDir: wasmCacheDir()})
	scripts := js.New(js.Options{Logger: env.Log, Authz: resolver, Now: opt.Now, Cache: opt.JSCache})
	var profiles runtime.ProfileStore = st
	if opt.DryRun {
		profiles = dryRunProfiles{st}
	}
	p, err := runtime.NewPipeline(ctx, pc, runtime.Deps{
		Registry: reg,
		Modules:  loader,
		Scripts:  scripts,
		Profiles: profiles,
		Clients:  rules.ClientDirectory(st),
		Logger:   env.Log,
		// Deadlines and trace durations run on the Env's clock: the one
		// `test --now` pins is the rules' view only (pinned, it put every
		// rule's deadline in the past and each module timed out at once).
		Now:     env.Now,
		BaseDir: c.Dir(),
	})
	if err != nil {
		_ = loader.Close(context.WithoutCancel(ctx))
		_ = scripts.Close(context.WithoutCancel(ctx))
		return nil, c.pipelineError(err)
	}
	return &Pipeline{Pipeline: p, release: func() error {
		return errors.Join(p.Close(), loader.Close(context.WithoutCancel(ctx)), scripts.Close(context.WithoutCancel(ctx)))
	}}, nil
}

// dryRunProfiles reads stored profiles but never writes them: a dry run
// shows the patches a login would persist without persisting them.
type dryRunProfiles struct{ runtime.ProfileStore }

func (d dryRunProfiles) PatchProfile(ctx context.Context, userID string, app, user map[string]any) (runtime.Profile, error) {
	cur, err := d.Profile(ctx, userID)
	if err != nil {
		return runtime.Profile{}, err
	}
	return authz.MergeProfile(cur, userID, app, user, 0)
}

// wasmCacheDir is where compiled WebAssembly rules are kept:
// $XDG_CACHE_HOME/claimsmith/wasm (os.UserCacheDir). Entries are keyed by
// the module's bytes and wazero's version, so a changed module or a new
// claimsmith compiles afresh; the loader prunes stale ones
// (runtime/internal/wasmcache). Empty (in memory) without a cache directory.
func wasmCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(base, "claimsmith", "wasm")
}
