package guard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Principal is the verified caller of a request.
type Principal struct {
	Subject   string
	Issuer    string
	ClientID  string
	TokenID   string
	Audience  []string
	ExpiresAt time.Time

	Groups      []string
	Roles       []string
	Permissions []string
	Scopes      []string

	// Claims is the verified claim set (or the introspection answer). Treat
	// it as read-only: cached principals are shared between requests.
	Claims map[string]any
	// Introspected is true when the claims came from RFC 7662 introspection.
	Introspected bool
}

func anyOf(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

func allOf(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func missing(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// HasRole reports whether p holds any of the roles. A nil principal holds
// nothing.
func (p *Principal) HasRole(roles ...string) bool { return p != nil && anyOf(p.Roles, roles) }

// HasAllRoles reports whether p holds every one of the roles.
func (p *Principal) HasAllRoles(roles ...string) bool { return p != nil && allOf(p.Roles, roles) }

// HasPermission reports whether p holds any of the permissions.
func (p *Principal) HasPermission(perms ...string) bool {
	return p != nil && anyOf(p.Permissions, perms)
}

// HasAllPermissions reports whether p holds every one of the permissions.
func (p *Principal) HasAllPermissions(perms ...string) bool {
	return p != nil && allOf(p.Permissions, perms)
}

// InGroup reports whether p is in any of the groups.
func (p *Principal) InGroup(groups ...string) bool { return p != nil && anyOf(p.Groups, groups) }

// InAllGroups reports whether p is in every one of the groups.
func (p *Principal) InAllGroups(groups ...string) bool { return p != nil && allOf(p.Groups, groups) }

// HasScope reports whether the token grants any of the scopes.
func (p *Principal) HasScope(scopes ...string) bool { return p != nil && anyOf(p.Scopes, scopes) }

// HasAllScopes reports whether the token grants every one of the scopes.
func (p *Principal) HasAllScopes(scopes ...string) bool { return p != nil && allOf(p.Scopes, scopes) }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the guard put into ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

func from(ctx context.Context) *Principal {
	p, _ := PrincipalFrom(ctx)
	return p
}

// HasRole reports whether the caller in ctx holds any of the roles (false
// when unauthenticated).
func HasRole(ctx context.Context, roles ...string) bool { return from(ctx).HasRole(roles...) }

// HasAllRoles reports whether the caller holds every one of the roles.
func HasAllRoles(ctx context.Context, roles ...string) bool { return from(ctx).HasAllRoles(roles...) }

// HasPermission reports whether the caller holds any of the permissions.
func HasPermission(ctx context.Context, perms ...string) bool {
	return from(ctx).HasPermission(perms...)
}

// HasAllPermissions reports whether the caller holds every one of them.
func HasAllPermissions(ctx context.Context, perms ...string) bool {
	return from(ctx).HasAllPermissions(perms...)
}

// InGroup reports whether the caller is in any of the groups.
func InGroup(ctx context.Context, groups ...string) bool { return from(ctx).InGroup(groups...) }

// InAllGroups reports whether the caller is in every one of the groups.
func InAllGroups(ctx context.Context, groups ...string) bool {
	return from(ctx).InAllGroups(groups...)
}

// HasScope reports whether the caller's token grants any of the scopes.
func HasScope(ctx context.Context, scopes ...string) bool { return from(ctx).HasScope(scopes...) }

// HasAllScopes reports whether the token grants every one of the scopes.
func HasAllScopes(ctx context.Context, scopes ...string) bool {
	return from(ctx).HasAllScopes(scopes...)
}

// Requirement is what RequireAuth checks. Within a kind any one value
// suffices unless the kind's All flag is set; every kind given must hold.
// Subject, when set, must equal the token's sub (Redwood's consistency
// check: the caller acts on its own record only).
type Requirement struct {
	Roles          []string
	AllRoles       bool
	Permissions    []string
	AllPermissions bool
	Groups         []string
	AllGroups      bool
	Scopes         []string // every listed scope is required (RFC 6750)
	Subject        string
}

// RequireAuth returns nil when the caller in ctx is authenticated and meets
// req; an *AuthError (401) when there is no principal; a *ForbiddenError
// (403) otherwise.
func RequireAuth(ctx context.Context, req Requirement) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return &AuthError{Reason: ErrNoToken}
	}
	return p.Require(req)
}

// Require checks req against p (see RequireAuth).
func (p *Principal) Require(req Requirement) error {
	check := func(kind string, have, want []string, all bool) error {
		if len(want) == 0 {
			return nil
		}
		if all && allOf(have, want) || !all && anyOf(have, want) {
			return nil
		}
		how := "any of"
		if all {
			how = "all of"
		}
		return &ForbiddenError{Reason: ErrNotAllowed, Detail: fmt.Sprintf("needs %s the %s %s", how, kind, strings.Join(want, ", "))}
	}
	if req.Subject != "" && p.Subject != req.Subject {
		return &ForbiddenError{Reason: ErrNotAllowed, Detail: "the token's subject is not the resource's owner"}
	}
	if err := check("roles", p.Roles, req.Roles, req.AllRoles); err != nil {
		return err
	}
	if err := check("permissions", p.Permissions, req.Permissions, req.AllPermissions); err != nil {
		return err
	}
	if err := check("groups", p.Groups, req.Groups, req.AllGroups); err != nil {
		return err
	}
	if m := missing(p.Scopes, req.Scopes); len(m) > 0 {
		return &ForbiddenError{Reason: ErrInsufficientScope, Scopes: req.Scopes, Detail: "missing scope " + strings.Join(m, " ")}
	}
	return nil
}
