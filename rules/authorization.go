package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// ExtensionSettings reads the authorization extension's `configuration`
// record (groupsInToken, persistRoles, …) when a rule is told to take its
// settings from there. authz.Reader provides it.
type ExtensionSettings interface {
	Snapshot(ctx context.Context) (*authz.Model, error)
}

// Lists switches the three authorization lists on or off.
type Lists struct {
	Groups      bool `json:"groups"`
	Roles       bool `json:"roles"`
	Permissions bool `json:"permissions"`
}

func (l Lists) any() bool { return l.Groups || l.Roles || l.Permissions }

// ClaimNames names the three list claims, relative to the namespace unless
// they are URLs.
type ClaimNames struct {
	Groups      string `json:"groups"`
	Roles       string `json:"roles"`
	Permissions string `json:"permissions"`
}

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
}

// Authorization resolves the user's groups, roles and permissions for the
// client (and the audience) through the store, fills event.authorization,
// adds the configured claims and persists the configured lists.
type Authorization struct {
	resolver authz.PolicyResolver
	settings ExtensionSettings
	cfg      AuthorizationConfig

	idToken, accessToken, passthrough, persist Lists
	groupsClaim, rolesClaim, permsClaim        string
}

// NewAuthorization builds the rule. settings may be nil unless the config
// sets from_extension.
func NewAuthorization(resolver authz.PolicyResolver, settings ExtensionSettings, namespace string, decode runtime.Decoder) (*Authorization, error) {
	if resolver == nil {
		return nil, errors.New("authorization rule needs an authorization store")
	}
	cfg := AuthorizationConfig{Claims: ClaimNames{Groups: "groups", Roles: "roles", Permissions: "permissions"}}
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	r := &Authorization{resolver: resolver, settings: settings, cfg: cfg}
	for _, c := range [...]struct{ key, name string }{
		{"claims.groups", cfg.Claims.Groups}, {"claims.roles", cfg.Claims.Roles}, {"claims.permissions", cfg.Claims.Permissions},
	} {
		if c.name == "" {
			return nil, &runtime.SettingError{Key: c.key, Reason: "empty claim name"}
		}
	}
	r.groupsClaim = claimName(namespace, cfg.Claims.Groups)
	r.rolesClaim = claimName(namespace, cfg.Claims.Roles)
	r.permsClaim = claimName(namespace, cfg.Claims.Permissions)
	for _, c := range [...]struct{ key, claim string }{
		{"claims.groups", r.groupsClaim}, {"claims.roles", r.rolesClaim}, {"claims.permissions", r.permsClaim},
	} {
		if err := checkClaim(c.key, c.claim); err != nil {
			return nil, err
		}
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
	r.idToken = deref(cfg.IDToken, Lists{Groups: true, Roles: true})
	r.accessToken = deref(cfg.AccessToken, Lists{Roles: true, Permissions: true})
	r.passthrough = deref(cfg.Passthrough, Lists{})
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
	m, err := r.settings.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("read the extension configuration: %w", err)
	}
	var c *authz.Configuration
	for i, rec := range m.Document().Configuration {
		if rec.ID == "v1" || (c == nil && i == 0) {
			c = &m.Document().Configuration[i]
		}
	}
	if c == nil {
		return nil
	}
	b := func(p *bool) bool { return p != nil && *p }
	inToken := Lists{Groups: b(c.GroupsInToken), Roles: b(c.RolesInToken), Permissions: b(c.PermissionsInToken)}
	// The extension put the lists on the user profile, which Auth0 rules
	// copied into both tokens; resource servers read the access token.
	r.idToken, r.accessToken = inToken, inToken
	r.persist = Lists{Groups: b(c.PersistGroups), Roles: b(c.PersistRoles), Permissions: b(c.PersistPermissions)}
	r.passthrough = Lists{Groups: b(c.GroupsPassthrough), Roles: b(c.RolesPassthrough), Permissions: b(c.PermissionsPassthrough)}
	return nil
}

// Run implements runtime.Rule. It abstains: resolving is not a vote.
func (r *Authorization) Run(ctx context.Context, ev *runtime.Event, out *runtime.Commands) error {
	pol, err := r.resolver.ResolvePolicy(ctx, authz.PolicyQuery{
		UserID:     ev.User.UserID,
		ClientID:   ev.Client.ClientID,
		Audience:   ev.Transaction.Audience,
		Connection: ev.Connection.Name,
		IdPGroups:  ev.User.Groups,
	})
	if err != nil {
		return fmt.Errorf("resolve policy of user %q for client %q: %w", ev.User.UserID, ev.Client.ClientID, err)
	}
	a := &runtime.Authorization{Groups: nonNil(pol.Groups), Roles: nonNil(pol.Roles), Permissions: nonNil(pol.Permissions)}
	if r.passthrough.Groups {
		a.Groups = union(ev.User.Groups, a.Groups)
	}
	if in := ev.Authorization; in != nil {
		if r.passthrough.Roles {
			a.Roles = union(in.Roles, a.Roles)
		}
		if r.passthrough.Permissions {
			a.Permissions = union(in.Permissions, a.Permissions)
		}
	}
	out.Authorization = a

	r.claims(r.idToken, &out.IDToken.Claims, a)
	r.claims(r.accessToken, &out.AccessToken.Claims, a)
	if r.persist.any() {
		obj := make(map[string]any, 3)
		if r.persist.Groups {
			obj["groups"] = a.Groups
		}
		if r.persist.Roles {
			obj["roles"] = a.Roles
		}
		if r.persist.Permissions {
			obj["permissions"] = a.Permissions
		}
		out.AppMetadata = map[string]any{"authorization": obj}
	}
	return nil
}

func (r *Authorization) claims(on Lists, dst *runtime.Claims, a *runtime.Authorization) {
	if on.Groups {
		dst.Set(r.groupsClaim, a.Groups)
	}
	if on.Roles {
		dst.Set(r.rolesClaim, a.Roles)
	}
	if on.Permissions {
		dst.Set(r.permsClaim, a.Permissions)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// union returns first followed by the items of second not in first, as the
// extension's _.union did (IdP values first).
func union(first, second []string) []string {
	if len(first) == 0 {
		return second
	}
	out := make([]string, 0, len(first)+len(second))
	for _, s := range first {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range second {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
