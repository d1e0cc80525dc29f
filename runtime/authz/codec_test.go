package authz_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/authztest"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

const samplePath = "../../samples/data/extension-export.json"

func TestParseDocumentErrorsNameWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []string
	}{
		{"unknown top-level key", `{"groups":[],"users":[]}`, []string{"document", "users", "unknown top-level key"}},
		{"not an object", `[1,2]`, []string{"document", "not a JSON object"}},
		{"empty", ` `, []string{"document", "empty"}},
		{"syntax", `{"groups":[{"_id":"g1",}]}`, []string{"document"}},
		{"section not an array", `{"groups":{}}`, []string{"group", "not an array"}},
		{"field type", `{"groups":[{"_id":"g1","name":5}]}`, []string{`group "g1"`, "name", "number", "string"}},
		{"members type", `{"groups":[{"_id":"g1","name":"G","members":"auth0|a"}]}`, []string{`group "g1"`, "members", "array"}},
		{"boolean config", `{"configuration":[{"_id":"v1","groupsInToken":"yes"}]}`, []string{`configuration "v1"`, "groupsInToken"}},
		{"entity without _id", `{"roles":[{"name":"r","applicationId":"c"}]}`, []string{"role", "#0", "_id", "required"}},
		{"duplicate _id", `{"permissions":[{"_id":"p","name":"a"},{"_id":"p","name":"b"}]}`, []string{`permission "p"`, "_id"}},
		{"long group name", `{"groups":[{"_id":"g1","name":"` + strings.Repeat("n", 51) + `"}]}`, []string{`group "g1"`, "name", "51"}},
		{"long permission name", `{"permissions":[{"_id":"p1","name":"` + strings.Repeat("n", 101) + `"}]}`, []string{`permission "p1"`, "name", "101"}},
		{"applicationType", `{"roles":[{"_id":"r1","name":"r","applicationType":"api","applicationId":"c"}]}`, []string{`role "r1"`, "applicationType"}},
		{"mapping", `{"groups":[{"_id":"g1","name":"G","mappings":[{"_id":"m1","groupName":"x"}]}]}`, []string{`group "g1"`, "mappings[0].connectionName"}},
		{"claimsmith unknown key", `{"claimsmith":{"apps":[]}}`, []string{"claimsmith", "apps"}},
		{"profile type", `{"claimsmith":{"profiles":[{"user_id":"u1","app_metadata":[1]}]}}`, []string{`profile "u1"`, "app_metadata"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := authz.ParseDocument([]byte(c.in))
			if err == nil {
				t.Fatal("accepted")
			}
			var ve *runtime.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("%T %v is not a *runtime.ValidationError", err, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestParseDocumentAcceptsExtensionData(t *testing.T) {
	in := "\xef\xbb\xbf" + `{
	  "configuration": [{"_id": "v1", "groupsInToken": true, "apikey": "k", "futureFlag": 1}],
	  "groups": [
	    {"_id": "g1", "name": "Dup", "members": ["u"], "nested": ["g1", "ghost"], "roles": ["nope"], "createdBy": {"x": [1, 2]}},
	    {"_id": "g2", "name": "dup", "nested": ["g1"]}
	  ],
	  "roles": [{"_id": "r1", "name": "r", "applicationId": "c", "users": ["u"]}, {"_id": "r2", "name": "r", "applicationType": "client", "applicationId": "c"}],
	  "permissions": [{"_id": "p1", "name": "p"}],
	  "applications": [{"_id": "legacy"}],
	  "rules": [{"_id": "legacy-rule"}]
	}`
	d, err := authz.ParseDocument([]byte(in))
	if err != nil {
		t.Fatalf("extension data refused: %v", err)
	}
	var out bytes.Buffer
	if err := authz.Encode(&out, d, authz.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{`"futureFlag": 1`, `"createdBy": {`, `"apikey": "k"`} {
		if !strings.Contains(s, want) {
			t.Errorf("export lost %s:\n%s", want, s)
		}
	}
	for _, gone := range []string{"legacy", `"applications"`, `"rules"`, `"claimsmith"`} {
		if strings.Contains(s, gone) {
			t.Errorf("export contains %s:\n%s", gone, s)
		}
	}
}

// TestSampleRoundTrip is the acceptance round trip on the sample export:
// import, export, import the export into an empty store, export again.
func TestSampleRoundTrip(t *testing.T) {
	ctx := context.Background()
	raw, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	var exports [2][]byte
	for i := range exports {
		d, err := authz.ParseDocument(raw)
		if err != nil {
			t.Fatalf("import %d: %v", i, err)
		}
		st := memory.New(memory.Options{})
		if _, err := st.Apply(ctx, 0, &authz.ReplaceDocument{Doc: d}); err != nil {
			t.Fatal(err)
		}
		exports[i], err = authztest.ExportFull(ctx, st, false)
		if err != nil {
			t.Fatal(err)
		}
		raw = exports[i]
	}
	if !bytes.Equal(exports[0], exports[1]) {
		t.Fatalf("round trip differs:\n%s\n---\n%s", exports[0], exports[1])
	}
}

// FuzzParseDocument feeds arbitrary bytes to the import decoder. Whatever it
// accepts must import into a store, resolve without panicking and export to
// bytes that decode to the same export again.
func FuzzParseDocument(f *testing.F) {
	if b, err := os.ReadFile(samplePath); err == nil {
		f.Add(b)
	}
	var fixture bytes.Buffer
	d := authztest.ResolutionFixture()
	d.Claimsmith = &authz.Section{Applications: []authz.Application{{ClientID: "c", Metadata: map[string]string{"required_roles": "a"}}},
		Profiles: []authz.ProfileRecord{{UserID: "u", AppMetadata: map[string]any{"a": 1.0}}}}
	_ = authz.Encode(&fixture, d, authz.ExportOptions{Full: true})
	f.Add(fixture.Bytes())
	for _, s := range []string{
		`{}`, `null`, `[]`, `{"groups":null}`, `{"groups":[null]}`, `{"groups":[{"_id":"g","name":"n","x":{}}]}`,
		`{"configuration":[{"_id":"v1","apikey":"k"}],"rules":[]}`, `{"claimsmith":{"profiles":[]}}`,
		`{"groups":[{"_id":"a","name":"A","nested":["b"]},{"_id":"b","name":"B","nested":["a"],"members":["u"]}]}`,
		`{"roles":[{"_id":"r","name":"\ud83d\ude00","applicationId":"c"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := authz.ParseDocument(in)
		if err != nil {
			if !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		st := memory.New(memory.Options{})
		ctx := context.Background()
		if _, err := st.Apply(ctx, 0, &authz.ReplaceDocument{Doc: d}); err != nil {
			// Only the profile size cap is checked at import time.
			if !errors.Is(err, runtime.ErrTooLarge) {
				t.Fatalf("validated document refused by the store: %v", err)
			}
			return
		}
		m, _ := st.Snapshot(ctx)
		for _, g := range d.Groups {
			for _, u := range g.Members {
				m.Resolve(authz.PolicyQuery{UserID: u, ClientID: "c", Connection: "x", IdPGroups: []string{g.Name}})
			}
		}
		first, err := authztest.ExportFull(ctx, st, true)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := authz.ParseDocument(first)
		if err != nil {
			t.Fatalf("export does not re-import: %v\n%s", err, first)
		}
		st2 := memory.New(memory.Options{})
		if _, err := st2.Apply(ctx, 0, &authz.ReplaceDocument{Doc: d2}); err != nil {
			t.Fatal(err)
		}
		second, _ := authztest.ExportFull(ctx, st2, true)
		if !bytes.Equal(first, second) {
			t.Fatalf("round trip differs:\n%s\n---\n%s", first, second)
		}
	})
}
