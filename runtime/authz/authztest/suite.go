package authztest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// RunValidation checks that bad input is refused with an error naming what
// was wrong and changes nothing.
func RunValidation(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	Apply(t, s, &authz.ReplaceDocument{Doc: ResolutionFixture()})
	long := strings.Repeat("x", 51)
	for _, c := range []struct {
		name   string
		op     authz.Op
		target error
		want   []string
	}{
		{"empty group name", &authz.CreateGroup{ID: "n1", Name: ""}, runtime.ErrInvalid, s2(`group "n1"`, "name")},
		{"long group name", &authz.CreateGroup{ID: "n1", Name: long}, runtime.ErrInvalid, s2(`group "n1"`, "name", "51")},
		{"group name taken, other case", &authz.CreateGroup{ID: "n1", Name: "engineering"}, runtime.ErrExists, s2("engineering", `"g-eng"`)},
		{"group id taken", &authz.CreateGroup{ID: "g-eng", Name: "Fresh"}, runtime.ErrExists, s2(`"g-eng"`)},
		{"group without id", &authz.CreateGroup{Name: "Fresh"}, runtime.ErrInvalid, s2("_id")},
		{"rename onto another group", &authz.UpdateGroup{ID: "g-db", Name: "BACKEND"}, runtime.ErrExists, s2("BACKEND", `"g-backend"`)},
		{"group nests itself", &authz.AddNestedGroups{GroupID: "g-eng", GroupIDs: s2("g-eng")}, runtime.ErrInvalid, s2(`group "g-eng"`, "nested", "itself")},
		{"empty member", &authz.AddGroupMembers{GroupID: "g-eng", UserIDs: s2("ok", "")}, runtime.ErrInvalid, s2(`group "g-eng"`, "members[1]")},
		{"no members", &authz.AddGroupMembers{GroupID: "g-eng"}, runtime.ErrInvalid, s2(`group "g-eng"`, "members")},
		{"mapping without connection", &authz.AddGroupMappings{GroupID: "g-eng", Mappings: []authz.Mapping{{ID: "m9", GroupName: "X"}}}, runtime.ErrInvalid, s2(`group "g-eng"`, "mappings[0].connectionName")},
		{"mapping id taken", &authz.AddGroupMappings{GroupID: "g-ad", Mappings: []authz.Mapping{{ID: "m-ad", GroupName: "X", ConnectionName: "c"}}}, runtime.ErrExists, s2(`"m-ad"`)},
		{"role name taken in its application", &authz.CreateRole{ID: "r9", Name: "editor", ApplicationType: authz.TypeClient, ApplicationID: Portal}, runtime.ErrExists, s2("editor", `"r-editor"`)},
		{"role bad applicationType", &authz.CreateRole{ID: "r9", Name: "x", ApplicationType: "api", ApplicationID: Portal}, runtime.ErrInvalid, s2(`role "r9"`, "applicationType")},
		{"role without application", &authz.CreateRole{ID: "r9", Name: "x", ApplicationType: authz.TypeClient}, runtime.ErrInvalid, s2(`role "r9"`, "applicationId")},
		{"permission name too long", &authz.CreatePermission{ID: "p9", Name: strings.Repeat("p", 101), ApplicationType: authz.TypeClient, ApplicationID: Portal}, runtime.ErrInvalid, s2(`permission "p9"`, "name")},
		{"permission name taken", &authz.UpdatePermission{ID: "p-write", Name: "read:docs", ApplicationType: authz.TypeClient, ApplicationID: Portal}, runtime.ErrExists, s2("read:docs", `"p-read"`)},
		{"application without client_id", &authz.PutApplication{Application: authz.Application{Name: "x"}}, runtime.ErrInvalid, s2("client_id")},
		{"import: duplicate group _id", &authz.ReplaceDocument{Doc: withGroup(authz.Group{ID: "g-eng", Name: "Again"})}, runtime.ErrInvalid, s2(`group "g-eng"`, "_id")},
		{"import: empty group name", &authz.ReplaceDocument{Doc: withGroup(authz.Group{ID: "g-new", Name: ""})}, runtime.ErrInvalid, s2(`group "g-new"`, "name")},
		{"import: bad mapping", &authz.ReplaceDocument{Doc: withGroup(authz.Group{ID: "g-new", Name: "N", Mappings: []authz.Mapping{{ID: "m", GroupName: long, ConnectionName: "c"}}})}, runtime.ErrInvalid, s2(`group "g-new"`, "mappings[0].groupName")},
		{"import: bad applicationType", &authz.ReplaceDocument{Doc: withRole(authz.Role{ID: "r-new", Name: "N", ApplicationType: "app", ApplicationID: "c"})}, runtime.ErrInvalid, s2(`role "r-new"`, "applicationType")},
		{"import: missing document", &authz.ReplaceDocument{}, runtime.ErrInvalid, s2("document")},
	} {
		rev, before := state(t, s)
		_, err := s.Apply(ctx, 0, c.op)
		expectErr(t, c.name, err, c.target, c.want...)
		unchanged(t, s, rev, before)
	}
	// What real extension data contains is accepted on import: duplicate
	// names, dangling ids and cycles (the fixture has all of them).
	d := ResolutionFixture()
	d.Groups = append(d.Groups, authz.Group{ID: "g-dup", Name: "ENGINEERING", Nested: s2("g-dup", "ghost")})
	Apply(t, s, &authz.ReplaceDocument{Doc: d})
}

func withGroup(g authz.Group) *authz.Document {
	d := ResolutionFixture()
	d.Groups = append(d.Groups, g)
	return d
}

func withRole(r authz.Role) *authz.Document {
	d := ResolutionFixture()
	d.Roles = append(d.Roles, r)
	return d
}

// RunRevisions checks optimistic concurrency and batch atomicity.
func RunRevisions(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	r0, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := s.Apply(ctx, r0, &authz.CreateGroup{ID: "g1", Name: "One"})
	if err != nil {
		t.Fatalf("Apply at the current revision: %v", err)
	}
	if r1 <= r0 {
		t.Fatalf("revision did not grow: %d → %d", r0, r1)
	}
	if got, _ := s.Revision(ctx); got != r1 {
		t.Fatalf("Revision() = %d, Apply returned %d", got, r1)
	}
	r2, err := s.Apply(ctx, r1, &authz.CreateGroup{ID: "g2", Name: "Two"})
	if err != nil {
		t.Fatal(err)
	}
	_, before := state(t, s)
	_, err = s.Apply(ctx, r1, &authz.CreateGroup{ID: "g3", Name: "Three"})
	expectErr(t, "stale revision", err, runtime.ErrConflict)
	var ce *runtime.ConflictError
	if !errors.As(err, &ce) || ce.Expected != r1 || ce.Actual != r2 {
		t.Fatalf("conflict error %#v, want expected %d actual %d", err, r1, r2)
	}
	unchanged(t, s, r2, before)

	// All or nothing: the second op fails, the first is not kept.
	_, err = s.Apply(ctx, 0, &authz.CreateGroup{ID: "g4", Name: "Four"}, &authz.AddGroupRoles{GroupID: "g4", RoleIDs: s2("missing")})
	expectErr(t, "failing batch", err, runtime.ErrNotFound, `"missing"`)
	unchanged(t, s, r2, before)

	// An empty batch changes nothing.
	if rev, err := s.Apply(ctx, 0); err != nil || rev != r2 {
		t.Fatalf("empty batch: rev %d err %v, want %d", rev, err, r2)
	}
	// Snapshots are immutable: a later write does not change them.
	m, _ := s.Snapshot(ctx)
	Apply(t, s, &authz.AddGroupMembers{GroupID: "g1", UserIDs: s2("u1")})
	if len(findGroup(m.Document(), "g1").Members) != 0 || m.Revision() != r2 {
		t.Fatal("an older snapshot changed after a write")
	}
	pol, _ := s.ResolvePolicy(ctx, authz.PolicyQuery{UserID: "u1", ClientID: Portal})
	if !slices.Equal(pol.Groups, s2("One")) {
		t.Fatalf("a write is not visible to the next resolution: %+v", pol)
	}
	// Profiles are not part of the policy: patching one keeps the revision.
	rev, _ := s.Revision(ctx)
	if _, err := s.PatchProfile(ctx, "u1", map[string]any{"k": "v"}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Revision(ctx); got != rev {
		t.Fatalf("PatchProfile bumped the revision %d → %d", rev, got)
	}
}

// RunApplications checks applications (client_id, name, metadata).
func RunApplications(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	_, err := s.Application(ctx, Portal)
	expectErr(t, "unknown application", err, runtime.ErrNotFound, Portal)
	Apply(t, s, &authz.PutApplication{Application: authz.Application{ClientID: Portal, Name: "Portal", Metadata: map[string]string{"required_roles": "viewer, editor"}}})
	a, err := s.Application(ctx, Portal)
	if err != nil || a.Name != "Portal" || a.Metadata["required_roles"] != "viewer, editor" {
		t.Fatalf("Application: %+v %v", a, err)
	}
	Apply(t, s, &authz.PutApplication{Application: authz.Application{ClientID: Portal, Name: "Portal 2"}})
	if a, _ = s.Application(ctx, Portal); a.Name != "Portal 2" || len(a.Metadata) != 0 {
		t.Fatalf("PutApplication must replace: %+v", a)
	}
	// An extension export (no claimsmith section) keeps applications.
	Apply(t, s, &authz.ReplaceDocument{Doc: ResolutionFixture()})
	if _, err := s.Application(ctx, Portal); err != nil {
		t.Fatalf("import without claimsmith section dropped applications: %v", err)
	}
	// A full import replaces them.
	d := ResolutionFixture()
	d.Claimsmith = &authz.Section{Applications: []authz.Application{{ClientID: Reports, Name: "Reports"}}}
	Apply(t, s, &authz.ReplaceDocument{Doc: d})
	if _, err := s.Application(ctx, Portal); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("full import kept an application it does not list: %v", err)
	}
	if a, err := s.Application(ctx, Reports); err != nil || a.Name != "Reports" {
		t.Fatalf("full import: %+v %v", a, err)
	}
	Apply(t, s, &authz.DeleteApplication{ClientID: Reports})
	_, err = s.Application(ctx, Reports)
	expectErr(t, "deleted application", err, runtime.ErrNotFound)
}

// RunOAuthClients checks that an application's OAuth registration (hash,
// grant types, audiences, keys) is stored whole, read back by Application,
// Snapshot and Records, survives an extension import and goes with a full
// one.
func RunOAuthClients(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	o := &authz.OAuthClient{AuthMethod: "client_secret_post", SecretHash: "sha256:" + strings.Repeat("ab", 32),
		GrantTypes: s2("client_credentials"), Audiences: s2("https://api.example.com"), Scopes: s2("read"),
		Issuers: s2("https://idp.example.com"), JWKS: json.RawMessage(`{"keys":[]}`)}
	want := authz.Application{ClientID: Portal, Name: "Portal", Metadata: map[string]string{"required_roles": "viewer"}, OAuth: o}
	Apply(t, s, &authz.PutApplication{Application: want})
	check := func(via string, got authz.Application) {
		t.Helper()
		if jsonOf(t, got) != jsonOf(t, want) {
			t.Fatalf("%s: %s, want %s", via, jsonOf(t, got), jsonOf(t, want))
		}
	}
	a, err := s.Application(ctx, Portal)
	if err != nil {
		t.Fatal(err)
	}
	check("Application", a)
	m, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, _ = m.Application(Portal)
	check("Snapshot", a)
	d, _, err := s.Records(ctx, authz.Footprint{Applications: true})
	if err != nil || d.Claimsmith == nil || len(d.Claimsmith.Applications) != 1 {
		t.Fatalf("Records: %+v %v", d, err)
	}
	check("Records", d.Claimsmith.Applications[0])
	if r := want.Redacted(); r.OAuth.SecretHash != "" || want.OAuth.SecretHash == "" {
		t.Fatal("Redacted must drop the hash of a copy only")
	}
	// Replacing the name and metadata keeps the registration.
	Apply(t, s, &authz.PutApplication{Application: authz.Application{ClientID: Portal, Name: "Portal 2"}})
	if a, _ = s.Application(ctx, Portal); a.Name != "Portal 2" || len(a.Metadata) != 0 || jsonOf(t, a.OAuth) != jsonOf(t, o) {
		t.Fatalf("PutApplication dropped the OAuth registration: %s", jsonOf(t, a))
	}
	Apply(t, s, &authz.PutApplication{Application: want})
	_, err = s.Apply(ctx, 0, &authz.SetApplicationOAuth{ClientID: "ghost", OAuth: o})
	expectErr(t, "OAuth registration of an unknown application", err, runtime.ErrNotFound, "ghost")
	Apply(t, s, &authz.ReplaceDocument{Doc: ResolutionFixture()})
	a, err = s.Application(ctx, Portal)
	if err != nil {
		t.Fatal(err)
	}
	check("after an extension import", a)
	Apply(t, s, &authz.SetApplicationOAuth{ClientID: Portal})
	if a, _ = s.Application(ctx, Portal); a.OAuth != nil || a.Name != "Portal" {
		t.Fatalf("SetApplicationOAuth(nil) must remove only the registration: %s", jsonOf(t, a))
	}
	d = ResolutionFixture()
	d.Claimsmith = &authz.Section{Applications: []authz.Application{{ClientID: Portal, Name: "Portal"}}}
	Apply(t, s, &authz.ReplaceDocument{Doc: d})
	if a, _ = s.Application(ctx, Portal); a.OAuth != nil {
		t.Fatalf("a full import without the registration kept it: %+v", a.OAuth)
	}
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// RunProfiles checks stored profiles and their merge patches.
func RunProfiles(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	p, err := s.Profile(ctx, "auth0|new")
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "auth0|new" || p.AppMetadata == nil || p.UserMetadata == nil || len(p.AppMetadata)+len(p.UserMetadata) != 0 {
		t.Fatalf("unknown user must have empty objects: %+v", p)
	}
	_, err = s.PatchProfile(ctx, "auth0|alice",
		map[string]any{"plan": "gold", "authorization": map[string]any{"groups": []any{"a"}, "roles": []any{"r"}}, "tags": []any{"x", "y"}},
		map[string]any{"theme": "dark"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.PatchProfile(ctx, "auth0|alice",
		map[string]any{"authorization": map[string]any{"groups": []any{"b"}, "permissions": []any{}}, "tags": []any{"z"}, "plan": nil},
		nil)
	if err != nil {
		t.Fatal(err)
	}
	wantApp := `{"authorization":{"groups":["b"],"permissions":[],"roles":["r"]},"tags":["z"]}`
	if jsonOf(t, got.AppMetadata) != wantApp || jsonOf(t, got.UserMetadata) != `{"theme":"dark"}` {
		t.Fatalf("PatchProfile returned %s / %s", jsonOf(t, got.AppMetadata), jsonOf(t, got.UserMetadata))
	}
	stored, err := s.Profile(ctx, "auth0|alice")
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, stored.AppMetadata) != wantApp || stored.UserID != "auth0|alice" {
		t.Fatalf("stored profile %s", jsonOf(t, stored))
	}
	// The caller's copy is its own.
	stored.AppMetadata["tags"] = "mutated"
	if again, _ := s.Profile(ctx, "auth0|alice"); jsonOf(t, again.AppMetadata) != wantApp {
		t.Fatal("mutating a returned profile changed the store")
	}
	// Over the cap: a clear error and nothing changes.
	_, err = s.PatchProfile(ctx, "auth0|alice", map[string]any{"blob": strings.Repeat("x", authz.DefaultProfileLimit)}, map[string]any{"theme": "light"})
	expectErr(t, "oversized profile", err, runtime.ErrTooLarge, "auth0|alice", "app_metadata")
	if again, _ := s.Profile(ctx, "auth0|alice"); jsonOf(t, again.AppMetadata) != wantApp || jsonOf(t, again.UserMetadata) != `{"theme":"dark"}` {
		t.Fatal("a refused patch changed the profile")
	}
	_, err = s.PatchProfile(ctx, "", map[string]any{"a": 1}, nil)
	expectErr(t, "empty user id", err, runtime.ErrInvalid, "user_id")

	// A full import replaces the profile set.
	d := ResolutionFixture()
	d.Claimsmith = &authz.Section{Profiles: []authz.ProfileRecord{{UserID: "auth0|bob", AppMetadata: map[string]any{"plan": "silver"}}}}
	Apply(t, s, &authz.ReplaceDocument{Doc: d})
	if p, _ := s.Profile(ctx, "auth0|alice"); len(p.AppMetadata) != 0 {
		t.Fatalf("full import kept a profile it does not list: %+v", p)
	}
	if p, _ := s.Profile(ctx, "auth0|bob"); jsonOf(t, p.AppMetadata) != `{"plan":"silver"}` {
		t.Fatalf("imported profile: %+v", p)
	}
	// An import without profiles keeps them.
	Apply(t, s, &authz.ReplaceDocument{Doc: ResolutionFixture()})
	if p, _ := s.Profile(ctx, "auth0|bob"); jsonOf(t, p.AppMetadata) != `{"plan":"silver"}` {
		t.Fatalf("import without profiles dropped them: %+v", p)
	}
	// An oversized imported profile refuses the whole import.
	rev, before := state(t, s)
	d = ResolutionFixture()
	d.Groups = d.Groups[:1]
	d.Claimsmith = &authz.Section{Profiles: []authz.ProfileRecord{{UserID: "auth0|big", UserMetadata: map[string]any{"b": strings.Repeat("y", authz.DefaultProfileLimit)}}}}
	_, err = s.Apply(ctx, 0, &authz.ReplaceDocument{Doc: d})
	expectErr(t, "oversized imported profile", err, runtime.ErrTooLarge, "auth0|big", "user_metadata")
	unchanged(t, s, rev, before)
	if p, _ := s.Profile(ctx, "auth0|bob"); jsonOf(t, p.AppMetadata) != `{"plan":"silver"}` {
		t.Fatal("a refused import changed profiles")
	}
	if l, ok := s.(authz.ProfileLister); ok {
		var ids []string
		if err := l.ListProfiles(ctx, func(p runtime.Profile) error { ids = append(ids, p.UserID); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, s2("auth0|bob")) {
			t.Fatalf("ListProfiles = %q", ids)
		}
	}
}

// ExportFull exports the store's document and, when it lists profiles, its
// profiles (claimsmith export --full).
func ExportFull(ctx context.Context, st authz.Store, full bool) ([]byte, error) {
	m, err := st.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	opt := authz.ExportOptions{Full: full}
	if l, ok := st.(authz.ProfileLister); ok && full {
		if opt.Profiles, err = authz.CollectProfiles(ctx, l); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	if err := authz.Encode(&b, m.Document(), opt); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RunRoundTrip imports, exports, imports the export into an empty store and
// exports again: the bytes are identical, full and default.
func RunRoundTrip(t *testing.T, open Opener) {
	ctx := context.Background()
	a := openStore(t, open)
	d := ResolutionFixture()
	d.Groups[0].Extra = authz.Extra{"createdAt": json.RawMessage(`"2017-01-01T00:00:00Z"`)}
	d.Claimsmith = &authz.Section{
		Applications: []authz.Application{{ClientID: Portal, Name: "Portal", Metadata: map[string]string{"required_roles": "viewer"}}},
		Profiles:     []authz.ProfileRecord{{UserID: "auth0|alice", AppMetadata: map[string]any{"n": 1.5, "o": map[string]any{"k": []any{true}}}}},
	}
	Apply(t, a, &authz.ReplaceDocument{Doc: d})
	for _, full := range []bool{false, true} {
		first, err := ExportFull(ctx, a, full)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(first, []byte(`"claimsmith"`)) != full {
			t.Fatalf("full=%v: claimsmith section presence wrong:\n%s", full, first)
		}
		parsed, err := authz.ParseDocument(first)
		if err != nil {
			t.Fatalf("export does not re-import: %v", err)
		}
		b := openStore(t, open)
		Apply(t, b, &authz.ReplaceDocument{Doc: parsed})
		second, err := ExportFull(ctx, b, full)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("full=%v: round trip differs:\nfirst  %s\nsecond %s", full, first, second)
		}
		for _, c := range ResolutionCases() {
			pa, _ := a.ResolvePolicy(ctx, c.Query)
			pb, _ := b.ResolvePolicy(ctx, c.Query)
			checkPolicy(t, "re-imported "+c.Name, pb, pa)
		}
	}
}

// RunConcurrency runs n optimistic writers (read the revision, build the
// whole document with one more member, Apply it with the expected revision,
// retry on conflict: without the check they would overwrite each other) and n
// plain writers (AddGroupMembers) on one group at once, plus n goroutines
// patching distinct keys of one profile. Nothing may be lost.
func RunConcurrency(t *testing.T, open Opener, n int) {
	s := openStore(t, open)
	ctx := context.Background()
	Apply(t, s, &authz.CreateGroup{ID: "g-hot", Name: "Hot"}, &authz.CreateGroup{ID: "g-other", Name: "Other"})
	errs := make(chan error, 3*n+4)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(3)
		go func() {
			defer wg.Done()
			errs <- OptimisticAddMember(ctx, s, "g-hot", fmt.Sprintf("opt-%03d", i))
		}()
		go func() {
			defer wg.Done()
			_, err := s.Apply(ctx, 0, &authz.AddGroupMembers{GroupID: "g-hot", UserIDs: s2(fmt.Sprintf("plain-%03d", i))})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.PatchProfile(ctx, "auth0|hot", map[string]any{fmt.Sprintf("k%03d", i): i}, nil)
			errs <- err
		}()
	}
	// Readers run alongside: under -race they catch a backend (or an op)
	// writing into a snapshot that readers still hold.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 4; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			q := authz.PolicyQuery{UserID: "opt-000", ClientID: Portal}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.ResolvePolicy(ctx, q); err != nil {
					errs <- err
					return
				}
				if m, err := s.Snapshot(ctx); err == nil {
					for _, g := range m.Document().Groups {
						_ = len(g.Members)
						for _, u := range g.Members {
							_ = u
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	members := findGroup(doc(t, s), "g-hot").Members
	var missing []string
	for i := 0; i < n; i++ {
		for _, u := range s2(fmt.Sprintf("opt-%03d", i), fmt.Sprintf("plain-%03d", i)) {
			if !slices.Contains(members, u) {
				missing = append(missing, u)
			}
		}
	}
	if len(missing) > 0 || len(members) != 2*n {
		t.Fatalf("lost updates: %d members, want %d; missing %q", len(members), 2*n, missing)
	}
	p, err := s.Profile(ctx, "auth0|hot")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.AppMetadata) != n {
		t.Fatalf("lost profile patches: %d keys, want %d", len(p.AppMetadata), n)
	}
}

// OptimisticAddMember adds userID to group by read-modify-write of the whole
// document with the expected revision, retrying on conflicts.
func OptimisticAddMember(ctx context.Context, s authz.Store, groupID, userID string) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := s.Snapshot(ctx)
		if err != nil {
			return err
		}
		d := m.Document().DeepCopy()
		found := false
		for i := range d.Groups {
			if d.Groups[i].ID == groupID {
				d.Groups[i].Members = append(d.Groups[i].Members, userID)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("group %q missing at revision %d", groupID, m.Revision())
		}
		_, err = s.Apply(ctx, m.Revision(), &authz.ReplaceDocument{Doc: d})
		if errors.Is(err, runtime.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("attempt %d: %w", attempt, err)
		}
		return nil
	}
}
