// Package gqlguard adapts runtime/guard's per-field GraphQL rules to gqlgen
// (github.com/99designs/gqlgen). It lives in the samples so the claimsmith
// binary never links gqlgen:
//
//	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: r}))
//	srv.AroundFields(gqlguard.FieldMiddleware(rules))
//	http.Handle("/graphql", g.Middleware(srv)) // the guard puts the principal in the context
package gqlguard

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/claimsmith/claimsmith/runtime/guard"
)

// FieldMiddleware checks every resolved field against rules ("Query.users":
// guard.RequireRole("admin"), …; default deny) before its resolver runs. A
// refused field resolves to null with a GraphQL error; the rest of the
// query is answered.
func FieldMiddleware(rules guard.GraphQLRules) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		if fc == nil || fc.Field.Field == nil {
			return next(ctx)
		}
		if err := rules.Check(ctx, fc.Object, fc.Field.Name); err != nil {
			return nil, err
		}
		return next(ctx)
	}
}
