package main

import (
	"context"
	"errors"
	"time"

	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/wasm"
)

// pipelineStore is what the login pipeline needs from the authorization
// store: policies, applications (to fill in a client the IdP only named),
// the extension configuration record and the stored profiles. Every
// authz.Store provides it.
type pipelineStore interface {
	authz.PolicyResolver
	authz.ApplicationReader
	rules.ExtensionSettings
	runtime.ProfileStore
}

// ruleRegistry registers the built-in rules with their dependencies closed
// over: the policy resolver (the store, or the cache in front of it), the
// store, the claim namespace and the clock.
func ruleRegistry(resolver authz.PolicyResolver, st pipelineStore, namespace string, now func() time.Time) (*runtime.Registry, error) {
	reg := runtime.NewRegistry()
	for _, r := range []struct {
		id   string
		ctor runtime.Constructor
	}{
		{rules.IDAuthorization, func(d runtime.Decoder) (runtime.Rule, error) {
			return rules.NewAuthorization(resolver, st, namespace, d)
		}},
		{rules.IDRequiredRoles, func(d runtime.Decoder) (runtime.Rule, error) { return rules.NewRequiredRoles(d) }},
		{rules.IDRequireVerifiedEmail, func(d runtime.Decoder) (runtime.Rule, error) { return rules.NewRequireVerifiedEmail(d) }},
		{rules.IDAllowedConnections, func(d runtime.Decoder) (runtime.Rule, error) { return rules.NewAllowedConnections(d) }},
		{rules.IDTimeWindow, func(d runtime.Decoder) (runtime.Rule, error) { return rules.NewTimeWindow(now, d) }},
		{rules.IDCopyMetadataClaims, func(d runtime.Decoder) (runtime.Rule, error) { return rules.NewCopyMetadataClaims(namespace, d) }},
		{rules.IDAddRequestContext, func(d runtime.Decoder) (runtime.Rule, error) { return rules.NewAddRequestContext(namespace, d) }},
	} {
		if err := reg.Register(r.id, r.ctor); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// pipelineOptions tune newPipeline for a command.
type pipelineOptions struct {
	// now is the clock (default time.Now); `test --now` pins it.
	now func() time.Time
	// dryRun keeps the stored profiles unchanged: patches are computed and
	// shown, never written.
	dryRun bool
	// resolver answers policy questions for the authorization rule and the
	// wasm host functions; nil uses the store directly (serve puts the
	// policy cache here).
	resolver authz.PolicyResolver
}

// newPipeline builds the configuration's pipeline over st, compiling its
// WebAssembly modules. Errors are one line naming the file, line, rule
// entry and key. release closes the rules and the module loader.
func newPipeline(ctx context.Context, a *app, lc *loadedConfig, st pipelineStore, opt pipelineOptions) (p *runtime.Pipeline, release func(), err error) {
	if opt.now == nil {
		opt.now = time.Now
	}
	pc := lc.cfg.Pipeline
	ns := ""
	if pc.Namespace != "" {
		// An invalid namespace is reported by NewPipeline, with its line.
		ns, _ = runtime.ParseNamespace(pc.Namespace)
	}
	resolver := opt.resolver
	if resolver == nil {
		resolver = st
	}
	reg, err := ruleRegistry(resolver, st, ns, opt.now)
	if err != nil {
		return nil, nil, err
	}
	loader := wasm.NewLoader(wasm.Options{Logger: a.log, Authz: resolver, Now: opt.now})
	var profiles runtime.ProfileStore = st
	if opt.dryRun {
		profiles = dryRunProfiles{st}
	}
	p, err = runtime.NewPipeline(ctx, pc, runtime.Deps{
		Registry: reg,
		Modules:  loader,
		Profiles: profiles,
		Clients:  rules.ClientDirectory(st),
		Logger:   a.log,
		Now:      opt.now,
		BaseDir:  lc.dir(),
	})
	if err != nil {
		_ = loader.Close(context.WithoutCancel(ctx))
		return nil, nil, lc.pipelineError(err)
	}
	release = func() {
		err := p.Close()
		err = errors.Join(err, loader.Close(context.WithoutCancel(ctx)))
		if err != nil {
			a.log.Warn("release pipeline", "error", err)
		}
	}
	return p, release, nil
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
