package rules_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/rules"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/authz/memory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const ns = "https://example.com/"

// loadStore returns a memory store holding testdata/store.json.
func loadStore(t testing.TB) *memory.Store {
	t.Helper()
	return loadStoreFile(t, "testdata/store.json")
}

// loadStoreFile is a memory store holding the document in path.
func loadStoreFile(t testing.TB, path string) *memory.Store {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := authz.ParseDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	s := memory.New(memory.Options{})
	if _, err := s.Apply(context.Background(), 0, &authz.ReplaceDocument{Doc: doc}); err != nil {
		t.Fatal(err)
	}
	return s
}

// registry is the built-in rule registry (rules.NewRegistry, as the server
// builds it) over the given store and clock.
func registry(t testing.TB, store *memory.Store, now func() time.Time, namespace string) *runtime.Registry {
	t.Helper()
	reg, err := rules.NewRegistry(rules.Deps{Resolver: store, Settings: store, Namespace: namespace, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// goldenCase is one testdata/<rule>/<case>.json file: a pipeline, an
// event and optionally the time of the login.
type goldenCase struct {
	Description string                 `json:"description"`
	Now         time.Time              `json:"now"`
	Pipeline    runtime.PipelineConfig `json:"pipeline"`
	Event       json.RawMessage        `json:"event"`
	// Stored seeds the store's profile of the event's user before the run.
	Stored *runtime.Profile `json:"stored_profile"`
}

// goldenOut is what a case's .golden.json holds: the result (durations
// zeroed) and the profile stored after the run.
type goldenOut struct {
	Result  *runtime.Result  `json:"result"`
	Profile *runtime.Profile `json:"stored_profile,omitempty"`
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.json") {
			cases = append(cases, f)
		}
	}
	// Every built-in rule has golden files.
	for _, id := range rules.IDs() {
		if m, _ := filepath.Glob(filepath.Join("testdata", id, "*.golden.json")); len(m) == 0 && !*update {
			t.Errorf("rule %s has no golden files in testdata/%s", id, id)
		}
	}
	for _, file := range cases {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(file, "testdata/"), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var c goldenCase
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if c.Now.IsZero() {
				c.Now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // a Monday
			}
			if c.Pipeline.Namespace == "" && !c.Pipeline.AllowUnnamespaced {
				c.Pipeline.Namespace = ns
			}
			store := loadStore(t)
			if c.Stored != nil {
				if _, err := store.PatchProfile(context.Background(), c.Stored.UserID, c.Stored.AppMetadata, c.Stored.UserMetadata); err != nil {
					t.Fatal(err)
				}
			}
			now := func() time.Time { return c.Now }
			p, err := runtime.NewPipeline(context.Background(), c.Pipeline, runtime.Deps{
				Registry: registry(t, store, now, c.Pipeline.Namespace), Profiles: store, Clients: rules.ClientDirectory(store), Now: now,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ev, err := runtime.DecodeEvent(c.Event)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Run(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			for i := range res.Trace {
				res.Trace[i].Duration = 0
			}
			out := goldenOut{Result: res}
			if prof, err := store.Profile(context.Background(), ev.User.UserID); err == nil && (len(prof.AppMetadata) > 0 || len(prof.UserMetadata) > 0) {
				out.Profile = &prof
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./rules -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (go test ./rules -update rewrites it):\n--- got\n%s\n--- want\n%s", file, golden, got, want)
			}
		})
	}
}
