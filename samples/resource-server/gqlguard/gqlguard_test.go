package gqlguard_test

import (
	"context"
	"errors"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
	"github.com/claimsmith/claimsmith/samples/resource-server/gqlguard"
)

func field(ctx context.Context, object, name string) context.Context {
	return graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: object, IsResolver: true,
		Field: graphql.CollectedField{Field: &ast.Field{Name: name}}})
}

func TestFieldMiddleware(t *testing.T) {
	mw := gqlguard.FieldMiddleware(guard.GraphQLRules{
		"Query.users":     guard.RequireRole("admin"),
		"Query.me":        guard.Authenticated(),
		"Employee.*":      guard.Authenticated(),
		"Employee.salary": guard.RequirePermission("employee:read-sensitive"),
	})
	admin := guard.WithPrincipal(context.Background(), &guard.Principal{Subject: "a", Roles: []string{"admin"}})
	viewer := guard.WithPrincipal(context.Background(), &guard.Principal{Subject: "v"})
	resolved := func(ctx context.Context) (any, error) { return "value", nil }
	for _, c := range []struct {
		name          string
		ctx           context.Context
		object, field string
		want          error
	}{
		{"admin lists users", admin, "Query", "users", nil},
		{"viewer may not", viewer, "Query", "users", runtime.ErrForbidden},
		{"anonymous", context.Background(), "Query", "me", runtime.ErrUnauthenticated},
		{"salary needs the permission", admin, "Employee", "salary", runtime.ErrForbidden},
		{"other employee fields", viewer, "Employee", "name", nil},
		{"default deny", admin, "Mutation", "fireEveryone", runtime.ErrForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := mw(field(c.ctx, c.object, c.field), resolved)
			if c.want == nil && (err != nil || v != "value") || c.want != nil && (!errors.Is(err, c.want) || v != nil) {
				t.Fatalf("got %v, %v; want %v", v, err, c.want)
			}
		})
	}
}
