package admin

import (
	"fmt"
	"testing"
)

// TestAdminAuditIDListWrites: the audit record of a write to an id list
// holds the entity's other fields and, of the list, only the ids the write
// named, so before → after is exactly what changed and the record does not
// grow with the list. Regression: the whole group went into before and
// after, and a member written to a large group cost its size.
func TestAdminAuditIDListWrites(t *testing.T) {
	f := newAdminFixture(t)
	f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "big", "name": "Big", "description": "d"})
	f.must(t, 201, "POST", "/api/groups", map[string]any{"_id": "child", "name": "Child"})
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprint("u", i))
	}
	f.must(t, 204, "PATCH", "/api/groups/big/members", many)
	f.must(t, 204, "PATCH", "/api/groups/big/nested", []string{"child"})
	cases := []struct {
		method, path  string
		body          []string
		before, after string
	}{
		{"PATCH", "/api/groups/big/members", []string{"new", "u7"},
			`{"_id":"big","name":"Big","description":"d","members":["u7"],"nested":["child"]}`,
			`{"_id":"big","name":"Big","description":"d","members":["u7","new"],"nested":["child"]}`},
		{"DELETE", "/api/groups/big/members", []string{"u3"},
			`{"_id":"big","name":"Big","description":"d","members":["u3"],"nested":["child"]}`,
			`{"_id":"big","name":"Big","description":"d","nested":["child"]}`},
		// Another list's write leaves the members out.
		{"DELETE", "/api/groups/big/nested", []string{"child"},
			`{"_id":"big","name":"Big","description":"d","nested":["child"]}`,
			`{"_id":"big","name":"Big","description":"d"}`},
	}
	for _, c := range cases {
		f.must(t, 204, c.method, c.path, c.body)
		rec := f.lastAudit(t)
		if string(rec.Before) != c.before || string(rec.After) != c.after {
			t.Errorf("%s %s %v: audit\n before %s\n after  %s\nwant\n before %s\n after  %s", c.method, c.path, c.body, rec.Before, rec.After, c.before, c.after)
		}
	}
}
