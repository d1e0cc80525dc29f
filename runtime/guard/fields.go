package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// FieldRule decides whether p may see a field of record (one JSON object).
type FieldRule func(p *Principal, record map[string]any) bool

// FieldRules map a field name to its rule. Fields without a rule are kept.
type FieldRules map[string]FieldRule

// Permission allows a field to holders of any of the permissions.
func Permission(perms ...string) FieldRule {
	return func(p *Principal, _ map[string]any) bool { return p.HasPermission(perms...) }
}

// Role allows a field to holders of any of the roles.
func Role(roles ...string) FieldRule {
	return func(p *Principal, _ map[string]any) bool { return p.HasRole(roles...) }
}

// Group allows a field to members of any of the groups.
func Group(groups ...string) FieldRule {
	return func(p *Principal, _ map[string]any) bool { return p.InGroup(groups...) }
}

// SameValue allows a field when the principal's claim at claimPath equals
// the record's field (e.g. the caller's division is the employee's).
func SameValue(claimPath, field string) FieldRule {
	cp, err := compilePath(claimPath)
	return func(p *Principal, rec map[string]any) bool {
		if err != nil || p == nil {
			return false
		}
		v, ok := cp.lookup(p.Claims, 0)
		s, _ := v.(string)
		r, _ := rec[field].(string)
		return ok && s != "" && s == r
	}
}

// AnyOf allows when one rule does; AllOf when every rule does.
func AnyOf(rules ...FieldRule) FieldRule {
	return func(p *Principal, rec map[string]any) bool {
		for _, r := range rules {
			if r(p, rec) {
				return true
			}
		}
		return false
	}
}

// AllOf allows when every rule does.
func AllOf(rules ...FieldRule) FieldRule {
	return func(p *Principal, rec map[string]any) bool {
		for _, r := range rules {
			if !r(p, rec) {
				return false
			}
		}
		return true
	}
}

// Filter removes from rec every field whose rule refuses p.
func (fr FieldRules) Filter(p *Principal, rec map[string]any) {
	for name, rule := range fr {
		if _, ok := rec[name]; ok && !rule(p, rec) {
			delete(rec, name)
		}
	}
}

// FilterJSON filters a JSON object or an array of objects (the employees
// example: `salary` only for employee:read-sensitive or HR of the same
// division). Other JSON values pass unchanged.
func (fr FieldRules) FilterJSON(p *Principal, body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: filter fields: %v", runtime.ErrInvalid, err)
	}
	switch t := doc.(type) {
	case map[string]any:
		fr.Filter(p, t)
	case []any:
		for _, e := range t {
			if m, ok := e.(map[string]any); ok {
				fr.Filter(p, m)
			}
		}
	default:
		return body, nil
	}
	return json.Marshal(doc)
}

// FieldCheck decides access to one GraphQL field: nil allows.
type FieldCheck func(ctx context.Context) error

// Authenticated allows any authenticated caller.
func Authenticated() FieldCheck {
	return func(ctx context.Context) error { return RequireAuth(ctx, Requirement{}) }
}

// Public allows everyone.
func Public() FieldCheck { return func(context.Context) error { return nil } }

// RequireRole allows holders of any of the roles (Redwood's hasRole).
func RequireRole(roles ...string) FieldCheck {
	return func(ctx context.Context) error { return RequireAuth(ctx, Requirement{Roles: roles}) }
}

// RequirePermission allows holders of any of the permissions.
func RequirePermission(perms ...string) FieldCheck {
	return func(ctx context.Context) error { return RequireAuth(ctx, Requirement{Permissions: perms}) }
}

// Require allows callers meeting req.
func Require(req Requirement) FieldCheck {
	return func(ctx context.Context) error { return RequireAuth(ctx, req) }
}

// GraphQLRules is a per-field rule map for GraphQL resolvers, keyed
// "Type.field" ("Query.users"), "Type.*" for every field of a type, and
// "*" for everything else. Default deny: a field without a rule is refused.
// Introspection fields (__schema, __typename, …) follow "*" only when it is
// set; otherwise they are allowed, as schema tooling needs them.
type GraphQLRules map[string]FieldCheck

// Validate reports keys that are not "Type.field", "Type.*" or "*".
func (g GraphQLRules) Validate() error {
	for k, c := range g {
		if c == nil {
			return &runtime.ValidationError{Entity: "graphql rules", ID: k, Reason: "no check"}
		}
		if k == "*" {
			continue
		}
		t, f, ok := strings.Cut(k, ".")
		if !ok || t == "" || f == "" || strings.Contains(f, ".") {
			return &runtime.ValidationError{Entity: "graphql rules", ID: k, Reason: "a key is Type.field, Type.* or *"}
		}
	}
	return nil
}

// Check authorizes object.field for the caller in ctx.
func (g GraphQLRules) Check(ctx context.Context, object, field string) error {
	if c, ok := g[object+"."+field]; ok {
		return c(ctx)
	}
	if c, ok := g[object+".*"]; ok {
		return c(ctx)
	}
	if c, ok := g["*"]; ok {
		return c(ctx)
	}
	if strings.HasPrefix(field, "__") || strings.HasPrefix(object, "__") {
		return nil
	}
	return &ForbiddenError{Reason: ErrNotAllowed, Voter: "graphql", Detail: fmt.Sprintf("no rule for %s.%s (default deny)", object, field)}
}
