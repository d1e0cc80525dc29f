package rules

import (
	"context"
	"errors"
	"fmt"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// ExtensionSettings reads the authorization extension's `configuration`
// record (groupsInToken, persistRoles, …) when a rule is told to take its
// settings from there: one record, read narrowly (authz.RecordReader; every
// store provides it).
type ExtensionSettings = authz.RecordReader

// Lists switches the three authorization lists on or off.
type Lists = runtime.AuthzLists

// ClaimNames names the three list claims, relative to the namespace unless
// they are URLs.
type ClaimNames = runtime.ClaimNames

// AuthorizationConfig is the authorization rule's `config`.
type AuthorizationConfig struct {
	// FromExtension takes the token, persist and passthrough switches from
	// the store's extension configuration record (read at start-up), so an
	// imported extension export carries its behaviour over. The switches
	// below must then be left out.
	FromExtension bool `json:"from_extension"`
	// IDToken and AccessToken select the lists put on each token (default:
	// groups and roles on the ID token, roles and permissions on the
	// access token).
	IDToken     *Lists `json:"id_token"`
	AccessToken *Lists `json:"access_token"`
	// Claims names the list claims (default groups, roles, permissions).
	Claims ClaimNames `json:"claims"`
	// Passthrough merges what the IdP sent (user.groups; the roles and
	// permissions of an incoming event.authorization) into the lists,
	// IdP values first (default off).
	Passthrough *Lists `json:"passthrough"`
	// Persist merges the lists into app_metadata.authorization (default off).
	// Unlike the extension, which replaced the object, only the persisted
	// keys change.
	Persist *Lists `json:"persist"`
	// PersistMode says where persisted lists go (see PersistExtension and
	// PersistPerClient; default extension). Allowed with from_extension.
	PersistMode string `json:"persist_mode"`
}

// The persist modes.
const (
	// PersistExtension writes the lists resolved for the client of this
	// login into app_metadata.authorization.{groups,roles,permissions},
	// as the Authorization Extension did. Roles and permissions are
	// per-client, so a user who signs in to several clients sees the
	// object change at every switch (and each switch costs a write).
	PersistExtension = "extension"
	// PersistPerClient writes them into
	// app_metadata.authorization.clients.<client_id>.{groups,roles,permissions}:
	// every client keeps its own lists, the stored profile stops flapping,
	// and a login that resolves what it resolved last time writes nothing.
	// Roles bound to the login's API audience are left out (they are the
	// token's, and would flip with logins with and without the audience).
	PersistPerClient = "per_client"
)

// Authorization resolves the user's groups, roles and permissions for the
// client (and the audience) through the store, fills event.authorization,
// adds the configured claims and persists the configured lists.
type Authorization struct {
	resolver authz.PolicyResolver
	settings ExtensionSettings
	cfg      AuthorizationConfig

	// proj is the projection onto claims, shared with live introspection
	// through Projection.
	proj      runtime.Projection
	persist   Lists
	perClient bool
}

// NewAuthorization builds the rule. settings may be nil unless the config
// sets from_extension.
func NewAuthorization(resolver authz.PolicyResolver, settings ExtensionSettings, namespace string, decode runtime.Decoder) (*Authorization, error) {
	if resolver == nil {
		return nil, errors.New("authorization rule needs an authorization store")
	}
	cfg := AuthorizationConfig{Claims: runtime.DefaultClaimNames()}
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	r := &Authorization{resolver: resolver, settings: settings, cfg: cfg}
	switch cfg.PersistMode {
	case "", PersistExtension:
	case PersistPerClient:
		r.perClient = true
	default:
		return nil, &runtime.SettingError{Key: "persist_mode", Reason: fmt.Sprintf("is %q, must be %q or %q", cfg.PersistMode, PersistExtension, PersistPerClient)}
	}
	var err error
	if r.proj.Names, err = cfg.Claims.Qualify(namespace); err != nil {
		return nil, err
	}
	if cfg.FromExtension {
		for _, c := range [...]struct {
			key string
			set bool
		}{{"id_token", cfg.IDToken != nil}, {"access_token", cfg.AccessToken != nil}, {"passthrough", cfg.Passthrough != nil}, {"persist", cfg.Persist != nil}} {
			if c.set {
				return nil, &runtime.SettingError{Key: c.key, Reason: "comes from the extension configuration when from_extension is true; remove it"}
			}
		}
		if settings == nil {
			return nil, &runtime.SettingError{Key: "from_extension", Reason: "no authorization store to read the extension configuration from"}
		}
		return r, nil
	}
	r.proj.IDToken = deref(cfg.IDToken, Lists{Groups: true, Roles: true})
	r.proj.AccessToken = deref(cfg.AccessToken, Lists{Roles: true, Permissions: true})
	r.proj.Passthrough = deref(cfg.Passthrough, Lists{})
	r.persist = deref(cfg.Persist, Lists{})
	return r, nil
}

func deref(l *Lists, def Lists) Lists {
	if l == nil {
		return def
	}
	return *l
}

// Provision reads the extension configuration record when from_extension
// is set. An absent record switches everything off, as a fresh extension
// install had it; event.authorization is filled regardless.
func (r *Authorization) Provision(ctx context.Context) error {
	if !r.cfg.FromExtension {
		return nil
	}
	doc, _, err := r.settings.Records(ctx, authz.Footprint{Configuration: true})
	if err != nil {
		return fmt.Errorf("read the extension configuration: %w", err)
	}
	var c *authz.Configuration
	for i, rec := range doc.Configuration {
		if rec.ID == "v1" || (c == nil && i == 0) {
			c = &doc.Configuration[i]
		}
	}
	if c == nil {
		return nil
	}
	b := func(p *bool) bool { return p != nil && *p }
	inToken := Lists{Groups: b(c.GroupsInToken), Roles: b(c.RolesInToken), Permissions: b(c.PermissionsInToken)}
	// The extension put the lists on the user profile, which Auth0 rules
	// copied into both tokens; resource servers read the access token.
	r.proj.IDToken, r.proj.AccessToken = inToken, inToken
	r.persist = Lists{Groups: b(c.PersistGroups), Roles: b(c.PersistRoles), Permissions: b(c.PersistPermissions)}
	r.proj.Passthrough = Lists{Groups: b(c.GroupsPassthrough), Roles: b(c.RolesPassthrough), Permissions: b(c.PermissionsPassthrough)}
	return nil
}

// Projection implements runtime.ClaimsProjector: live introspection
// projects the user's current policy exactly as this rule did at login.
func (r *Authorization) Projection() runtime.Projection { return r.proj }

// Run implements runtime.Rule. It abstains: resolving is not a vote.
func (r *Authorization) Run(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error {
	pol, err := r.resolver.ResolvePolicy(ctx, runtime.LoginQuery(ev))
	if err != nil {
		return fmt.Errorf("resolve policy of user %q for client %q: %w", ev.User.UserID, ev.Client.ClientID, err)
	}
	a := r.proj.Authorization(pol.Groups, pol.Roles, pol.Permissions, ev.User.Groups, ev.Authorization)
	out.Authorization = a

	r.proj.Set(&out.IDToken.Claims, r.proj.IDToken, a)
	r.proj.Set(&out.AccessToken.Claims, r.proj.AccessToken, a)
	if r.persist.Any() {
		keep := a
		if r.perClient && ev.Transaction.Audience != "" {
			// Roles bound to an API audience are the token's, not the
			// client's: kept under the client they would flip at every
			// login with and without that audience (a profile write each).
			q := runtime.LoginQuery(ev)
			q.Audience = ""
			own, err := r.resolver.ResolvePolicy(ctx, q)
			if err != nil {
				return fmt.Errorf("resolve policy of user %q for client %q: %w", ev.User.UserID, ev.Client.ClientID, err)
			}
			keep = r.proj.Authorization(own.Groups, own.Roles, own.Permissions, ev.User.Groups, ev.Authorization)
		}
		out.AppMetadata = r.persistPatch(ev, keep)
	}
	return nil
}

// persistPatch is the app_metadata patch persisting the configured lists,
// or nil when there is nothing to keep: every list empty and nothing stored
// at that place yet (a login of an unknown user writes no profile).
func (r *Authorization) persistPatch(ev *runtime.Event, a *runtime.Authorization) map[string]any {
	obj := make(map[string]any, 3)
	empty := true
	put := func(on bool, key string, list []string) {
		if on {
			obj[key] = list
			empty = empty && len(list) == 0
		}
	}
	put(r.persist.Groups, "groups", a.Groups)
	put(r.persist.Roles, "roles", a.Roles)
	put(r.persist.Permissions, "permissions", a.Permissions)
	stored, _ := ev.User.AppMetadata["authorization"].(map[string]any)
	if r.perClient {
		if ev.Client.ClientID == "" {
			return nil // no client to keep the lists under
		}
		clients, _ := stored["clients"].(map[string]any)
		if _, ok := clients[ev.Client.ClientID]; !ok && empty {
			return nil
		}
		return map[string]any{"authorization": map[string]any{"clients": map[string]any{ev.Client.ClientID: obj}}}
	}
	if stored == nil && empty {
		return nil
	}
	return map[string]any{"authorization": obj}
}
