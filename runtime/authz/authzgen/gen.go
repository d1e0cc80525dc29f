// Package authzgen generates authorization models of a given size,
// deterministically: the benchmarks of every backend and the load test's
// data use it. It is an ordinary package (not a _test helper) so the
// shipped binary's load test can use it without linking package testing.
package authzgen

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// GenSpec describes a generated model. The group, role and permission
// structure depends only on Seed and the entity counts, never on Users, so
// the benchmark user (BenchUser) has the same memberships and resolution work
// in a model of 1,000 users as in one of 100,000.
type GenSpec struct {
	Groups        int    // e.g. 10,000
	Roles         int    // e.g. 1,000
	Permissions   int    // e.g. 3,000
	Users         int    // e.g. 100,000
	Clients       int    // client applications the roles are spread over (plus one API)
	GroupsPerUser int    // direct memberships of every user, e.g. 10
	MaxDepth      int    // nesting levels, e.g. 5 (a user inherits ≤ MaxDepth-1 ancestors per group)
	Seed          uint64 // same seed, same document
}

// BenchSpec is the benchmark model of the issue: 10,000 groups nested up to 5
// levels, 1,000 roles, 100,000 users each in 10 groups.
func BenchSpec(users int) GenSpec {
	return GenSpec{Groups: 10000, Roles: 1000, Permissions: 3000, Users: users, Clients: 20, GroupsPerUser: 10, MaxDepth: 5, Seed: 42}
}

// Generated user ids, client ids and the benchmark user.
const (
	BenchUser       = "auth0|bench-user"
	BenchConnection = "corp-ad"
	BenchAudience   = "https://api.example.com/"
)

// GenUserID is the id of generated user i.
func GenUserID(i int) string { return fmt.Sprintf("auth0|user-%06d", i) }

// GenClientID is the id of generated client application i.
func GenClientID(i int) string { return fmt.Sprintf("client-%02d", i) }

// GenIdPGroup is the IdP group name mapped onto generated group i (when it
// has a mapping: every 20th group).
func GenIdPGroup(i int) string { return fmt.Sprintf("CORP\\group-%05d", i) }

// BenchQuery is the login the benchmarks resolve: BenchUser on client-00
// with two IdP groups that map onto groups, and the API audience.
func BenchQuery() authz.PolicyQuery {
	return authz.PolicyQuery{UserID: BenchUser, ClientID: GenClientID(0), Audience: BenchAudience,
		Connection: BenchConnection, IdPGroups: []string{GenIdPGroup(20), GenIdPGroup(400)}}
}

// Generate builds the document deterministically.
func Generate(spec GenSpec) *authz.Document {
	if spec.MaxDepth < 1 {
		spec.MaxDepth = 1
	}
	if spec.Clients < 1 {
		spec.Clients = 1
	}
	structure := rand.New(rand.NewPCG(spec.Seed, 1))
	d := &authz.Document{Configuration: []authz.Configuration{{ID: "v1", APIKey: "generated"}}}

	apps := make([]string, spec.Clients+1)
	for i := 0; i < spec.Clients; i++ {
		apps[i] = GenClientID(i)
	}
	apps[spec.Clients] = BenchAudience
	appType := func(a int) string {
		if a == spec.Clients {
			return authz.TypeResourceServer
		}
		return authz.TypeClient
	}
	permsOf := make([][]string, len(apps))
	d.Permissions = make([]authz.Permission, spec.Permissions)
	for i := range d.Permissions {
		a := i % len(apps)
		id := fmt.Sprintf("perm-%05d", i)
		d.Permissions[i] = authz.Permission{ID: id, Name: fmt.Sprintf("action-%d:%s", i/len(apps), apps[a]),
			ApplicationType: appType(a), ApplicationID: apps[a]}
		permsOf[a] = append(permsOf[a], id)
	}
	d.Roles = make([]authz.Role, spec.Roles)
	for i := range d.Roles {
		a := i % len(apps)
		r := authz.Role{ID: fmt.Sprintf("role-%04d", i), Name: fmt.Sprintf("role-%d", i/len(apps)),
			ApplicationType: appType(a), ApplicationID: apps[a]}
		for k, n := 0, 1+structure.IntN(5); k < n && len(permsOf[a]) > 0; k++ {
			r.Permissions = appendNew(r.Permissions, permsOf[a][structure.IntN(len(permsOf[a]))])
		}
		d.Roles[i] = r
	}

	// Groups are split into MaxDepth levels; every group below the top has a
	// parent one level up (every 10th a second one), so ancestor chains are
	// at most MaxDepth long.
	d.Groups = make([]authz.Group, spec.Groups)
	perLevel := (spec.Groups + spec.MaxDepth - 1) / spec.MaxDepth
	for i := range d.Groups {
		g := authz.Group{ID: fmt.Sprintf("group-%05d", i), Name: fmt.Sprintf("Group %05d", i)}
		for k, n := 0, 1+structure.IntN(2); k < n && spec.Roles > 0; k++ {
			g.Roles = appendNew(g.Roles, d.Roles[structure.IntN(spec.Roles)].ID)
		}
		if i%20 == 0 {
			g.Mappings = []authz.Mapping{{ID: fmt.Sprintf("map-%05d", i), GroupName: GenIdPGroup(i), ConnectionName: BenchConnection}}
		}
		d.Groups[i] = g
	}
	for i := perLevel; i < spec.Groups; i++ {
		level := i / perLevel
		lo := (level - 1) * perLevel
		parents := []int{lo + structure.IntN(perLevel)}
		if i%10 == 0 {
			parents = append(parents, lo+structure.IntN(perLevel))
		}
		for _, p := range parents {
			d.Groups[p].Nested = appendNew(d.Groups[p].Nested, d.Groups[i].ID)
		}
	}

	// Users, from their own random stream.
	users := rand.New(rand.NewPCG(spec.Seed, 2))
	add := func(u string, rng *rand.Rand) {
		chosen := make([]int, 0, spec.GroupsPerUser)
		for k := 0; len(chosen) < min(spec.GroupsPerUser, spec.Groups); k++ {
			// Prefer the deepest level so memberships inherit whole chains.
			g := spec.Groups - 1 - rng.IntN(min(spec.Groups, perLevel))
			if k%3 == 2 {
				g = rng.IntN(spec.Groups)
			}
			if slices.Contains(chosen, g) {
				continue
			}
			chosen = append(chosen, g)
			d.Groups[g].Members = append(d.Groups[g].Members, u)
		}
		if rng.IntN(100) == 0 && spec.Roles > 0 {
			r := &d.Roles[rng.IntN(spec.Roles)]
			r.Users = appendNew(r.Users, u)
		}
	}
	for i := 0; i < spec.Users; i++ {
		add(GenUserID(i), users)
	}
	// The benchmark user: same groups in every model of this structure.
	bench := rand.New(rand.NewPCG(spec.Seed, 3))
	add(BenchUser, bench)
	for k := 0; k < 2 && spec.Roles > 0; k++ {
		r := &d.Roles[(k*len(apps))%spec.Roles] // roles of client-00
		r.Users = appendNew(r.Users, BenchUser)
	}
	return d
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
