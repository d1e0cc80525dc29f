package guard_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
)

// employeeFields is seed 001's example: salary only with
// employee:read-sensitive, or for HR of the same division.
var employeeFields = guard.FieldRules{
	"salary": guard.AnyOf(
		guard.Permission("employee:read-sensitive"),
		guard.AllOf(guard.Group("HR"), guard.SameValue(ns+"division", "division")),
	),
}

func TestEmployeeSalaryFilter(t *testing.T) {
	body := []byte(`[{"id":"e1","name":"Ann","division":"sales","salary":70000},{"id":"e2","name":"Bo","division":"ops","salary":65000}]`)
	cases := []struct {
		name string
		p    *guard.Principal
		want []bool // salary visible per employee
	}{
		{"plain reader", &guard.Principal{Permissions: []string{"employee:read"}}, []bool{false, false}},
		{"sensitive reader", &guard.Principal{Permissions: []string{"employee:read", "employee:read-sensitive"}}, []bool{true, true}},
		{"HR of sales", &guard.Principal{Groups: []string{"HR"}, Claims: map[string]any{ns + "division": "sales"}}, []bool{true, false}},
		{"sales, not HR", &guard.Principal{Groups: []string{"Sales"}, Claims: map[string]any{ns + "division": "sales"}}, []bool{false, false}},
		{"unauthenticated", nil, []bool{false, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := employeeFields.FilterJSON(c.p, body)
			if err != nil {
				t.Fatal(err)
			}
			var got []map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			for i, e := range got {
				if _, has := e["salary"]; has != c.want[i] {
					t.Errorf("employee %d salary visible=%v, want %v", i, has, c.want[i])
				}
				if e["name"] == nil {
					t.Errorf("unlisted fields are kept")
				}
			}
		})
	}
	if _, err := employeeFields.FilterJSON(nil, []byte("{")); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestGraphQLRules(t *testing.T) {
	rules := guard.GraphQLRules{
		"Query.users":   guard.RequireRole("admin"),
		"Query.me":      guard.Authenticated(),
		"Query.version": guard.Public(),
		"User.*":        guard.Authenticated(),
		"User.salary":   guard.RequirePermission("employee:read-sensitive"),
		"Mutation.fire": guard.Require(guard.Requirement{Roles: []string{"admin"}, Groups: []string{"HR"}}),
	}
	if err := rules.Validate(); err != nil {
		t.Fatal(err)
	}
	admin := guard.WithPrincipal(bg, &guard.Principal{Roles: []string{"admin"}})
	reader := guard.WithPrincipal(bg, &guard.Principal{Permissions: []string{"employee:read-sensitive"}})
	cases := []struct {
		name        string
		ctx         context.Context
		object, fld string
		want        error
	}{
		{"admin lists users", admin, "Query", "users", nil},
		{"reader cannot", reader, "Query", "users", runtime.ErrForbidden},
		{"anonymous cannot", bg, "Query", "users", runtime.ErrUnauthenticated},
		{"public field", bg, "Query", "version", nil},
		{"type wildcard", admin, "User", "name", nil},
		{"field beats wildcard", admin, "User", "salary", runtime.ErrForbidden},
		{"sensitive reader sees salary", reader, "User", "salary", nil},
		{"default deny", admin, "Query", "secrets", runtime.ErrForbidden},
		{"both kinds needed", admin, "Mutation", "fire", runtime.ErrForbidden},
		{"introspection allowed", bg, "__Schema", "types", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := rules.Check(c.ctx, c.object, c.fld)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if err := (guard.GraphQLRules{"users": guard.Public()}).Validate(); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("bad key: %v", err)
	}
}
