package login_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/internal/hookstest"
	"github.com/claimsmith/claimsmith/hooks/login"
	"github.com/claimsmith/claimsmith/runtime"
)

// TestDryRunAgreesWithServer feeds the same bodies to the dry run
// (`claimsmith test` reads its event with runtime.DecodeEvent and runs the
// pipeline) and to the native trigger over HTTP (the endpoint of the body's
// trigger): both refuse the same bodies, and for the others the pipeline
// sees the same event and answers the same decision and claims.
func TestDryRunAgreesWithServer(t *testing.T) {
	inputs := map[string][]byte{
		"big integer kept exact": []byte(`{"user":{"user_id":"alice","app_metadata":{"n":12345678901234567890,"f":1.50}},"client":{"client_id":"portal"}}`),
		"machine without user":   []byte(`{"trigger":"credentials-exchange","client":{"client_id":"batch-client"}}`),
		"unknown keys ignored":   []byte(`{"user":{"user_id":"alice","x":1},"client":{"client_id":"portal"},"stats":{"logins_count":3}}`),
		"mint asked":             []byte(`{"user":{"user_id":"alice"},"client":{"client_id":"portal"},"mint":false}`),
		"no client":              []byte(`{"user":{"user_id":"alice"}}`),
		"no user":                []byte(`{"client":{"client_id":"portal"}}`),
		"unknown trigger":        []byte(`{"trigger":"pre-register","user":{"user_id":"alice"},"client":{"client_id":"portal"}}`),
		"trailing bracket":       []byte(`{"user":{"user_id":"alice"},"client":{"client_id":"portal"}}]`),
		"trailing object":        []byte(`{"user":{"user_id":"alice"},"client":{"client_id":"portal"}} {}`),
		"wrong type":             []byte(`{"user":{"user_id":"alice","email_verified":"yes"},"client":{"client_id":"portal"}}`),
		"null":                   []byte(`null`),
		"empty":                  {},
	}
	for _, glob := range []string{"samples/events/*.json", "samples/payloads/native/*.request.json"} {
		files, err := filepath.Glob(filepath.Join("..", "..", glob))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v", glob, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			inputs[filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f)] = b
		}
	}

	store := hookstest.NewStore(t, hookstest.PortalClient, hookstest.BatchClient)
	p := hookstest.NewPipeline(t, store)
	// seen is the event the server's pipeline run got, as JSON at the start
	// of the run (the pipeline changes it as rules run).
	var mu sync.Mutex
	var seen []byte
	capture := enricherFunc(func(ctx context.Context, ev *runtime.Event) (*runtime.Result, error) {
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		seen = b
		mu.Unlock()
		return p.Run(ctx, ev)
	})
	set, err := (&login.Config{Native: &login.NativeConfig{Callers: []login.CallerConfig{{Name: "idp", BearerKey: nativeBearer}}}}).
		Build(login.Deps{Enricher: capture, Namespace: hookstest.NS})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	set.Register(mux.Handle)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for name, body := range inputs {
		t.Run(name, func(t *testing.T) {
			// The dry run.
			ev, dryErr := runtime.DecodeEvent(body)
			var dryEvent []byte
			var dry *runtime.Result
			if dryErr == nil {
				if dryEvent, err = json.Marshal(ev); err != nil {
					t.Fatal(err)
				}
				if dry, err = p.Run(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(dryErr, runtime.ErrInvalid) {
				t.Fatalf("dry run: %v does not match ErrInvalid", dryErr)
			}

			// The server, at the endpoint of the body's trigger.
			path := "/hooks/v1/post-login"
			var tr struct{ Trigger runtime.Trigger }
			if json.Unmarshal(body, &tr) == nil && tr.Trigger == runtime.TriggerCredentialsExchange {
				path = "/hooks/v1/credentials-exchange"
			}
			mu.Lock()
			seen = nil
			mu.Unlock()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+nativeBearer)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()

			if dryErr != nil {
				var eb hooks.ErrorBody
				_ = json.NewDecoder(res.Body).Decode(&eb)
				if res.StatusCode != http.StatusBadRequest || seen != nil {
					t.Fatalf("the dry run refuses (%v), the server answers %d %+v", dryErr, res.StatusCode, eb)
				}
				return
			}
			var ans login.NativeResponse
			if err := json.NewDecoder(res.Body).Decode(&ans); err != nil || res.StatusCode != 200 {
				t.Fatalf("the dry run accepts, the server answers %d (%v)", res.StatusCode, err)
			}
			// The server names the login with a trace id; otherwise the
			// pipeline saw the same event.
			var dryMap, srvMap map[string]any
			_ = json.Unmarshal(dryEvent, &dryMap)
			_ = json.Unmarshal(seen, &srvMap)
			if dtx, _ := dryMap["transaction"].(map[string]any); dtx == nil || dtx["id"] == nil {
				if tx, _ := srvMap["transaction"].(map[string]any); tx != nil && tx["id"] == ans.TraceID {
					delete(tx, "id")
				}
			}
			if !reflect.DeepEqual(dryMap, srvMap) {
				t.Fatalf("events differ:\ndry run %s\nserver  %s", dryEvent, seen)
			}
			if !reflect.DeepEqual(dry.Decision, ans.Decision) || !claimsEqual(t, dry.IDTokenClaims, ans.IDTokenClaims) ||
				!claimsEqual(t, dry.AccessTokenClaims, ans.AccessTokenClaims) {
				t.Fatalf("answers differ:\ndry run %+v %v %v\nserver  %+v %v %v", dry.Decision, dry.IDTokenClaims, dry.AccessTokenClaims,
					ans.Decision, ans.IDTokenClaims, ans.AccessTokenClaims)
			}
		})
	}
}

// claimsEqual compares two claim sets by their JSON.
func claimsEqual(t *testing.T, a, b runtime.Claims) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return bytes.Equal(ja, jb)
}
