// Command resource-server is a small API protected by runtime/guard — seed
// 001's employees example:
//
//   - GET  /employees            needs employee:read (a path rule); each
//     employee's salary only with employee:read-sensitive, or for HR of the
//     same division (field rules)
//   - POST /orders/{id}/cancel   a voter: only the order's owner
//   - GET  /healthz              skip: public
//
// Run it against a claimsmith serve (or any OIDC issuer):
//
//	go run ./samples/resource-server -issuer http://127.0.0.1:8080 \
//	  -audience https://api.example.com/ -namespace https://example.com/
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/claimsmith/claimsmith/runtime/guard"
)

type employee struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Division string `json:"division"`
	Salary   int    `json:"salary"`
}

var employees = []employee{
	{"e1", "Ann Lee", "sales", 70000},
	{"e2", "Bo Park", "engineering", 95000},
	{"e3", "Cy Diaz", "sales", 64000},
}

// orders maps an order id to its owner (the token's sub).
var orders = map[string]string{"o-100": "auth0|alice", "o-200": "auth0|bob"}

// salaryRule: employee:read-sensitive, or HR whose division claim is the
// employee's division.
func salaryRule(namespace string) guard.FieldRules {
	return guard.FieldRules{"salary": guard.AnyOf(
		guard.Permission("employee:read-sensitive"),
		guard.AllOf(guard.Group("HR"), guard.SameValue(namespace+"division", "division")),
	)}
}

// rules are the path rules; routes add voters.
func rules() []guard.RuleSetConfig {
	return []guard.RuleSetConfig{{Rules: []guard.PathRuleConfig{
		{Path: "/healthz", Public: true},
		{Path: "/employees", Methods: []string{"GET"}, Allowed: guard.Allowed{Permissions: []string{"employee:read"}}},
		{Path: "/orders/*/cancel", Methods: []string{"POST"}},
	}}}
}

// newAPI wires the handlers behind g.
func newAPI(g *guard.Guard, namespace string) http.Handler {
	fields := salaryRule(namespace)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /employees", func(w http.ResponseWriter, r *http.Request) {
		p, _ := guard.PrincipalFrom(r.Context())
		body, _ := json.Marshal(employees)
		out, err := fields.FilterJSON(p, body)
		if err != nil {
			guard.WriteError(w, "", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	owner := guard.Named("order-owner", guard.VoterFunc(func(_ context.Context, req *guard.AuthzRequest) (guard.Verdict, error) {
		o, ok := orders[req.HTTP.PathValue("id")]
		if ok && o == req.Principal.Subject {
			return guard.Allow("owns the order"), nil
		}
		return guard.Deny("not the order's owner"), nil
	}))
	mux.Handle("POST /orders/{id}/cancel", g.Protect(guard.Route{Resource: "order", Voters: []guard.Voter{owner}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"cancelled":%q}`, r.PathValue("id"))
		})))
	return g.Middleware(mux)
}

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "token issuer (discovery at ISSUER/.well-known/openid-configuration)")
	audience := flag.String("audience", "https://api.example.com/", "this API's audience")
	namespace := flag.String("namespace", "https://example.com/", "claim namespace")
	addr := flag.String("addr", "127.0.0.1:9090", "listen address")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	keys, err := guard.NewRemoteKeys(guard.RemoteKeysConfig{Issuer: *issuer, Logger: log})
	if err != nil {
		log.Error("keys", "err", err)
		os.Exit(2)
	}
	v, err := guard.NewJWTVerifier(guard.VerifierConfig{Issuer: *issuer, Audiences: []string{*audience}}, keys, time.Now)
	if err != nil {
		log.Error("verifier", "err", err)
		os.Exit(2)
	}
	auth, err := guard.NewAuthenticator(guard.AuthConfig{Verifier: v, Paths: guard.DefaultClaimPaths(*namespace),
		OverflowClaim: *namespace + "authz_overflow", Logger: log})
	if err != nil {
		log.Error("authenticator", "err", err)
		os.Exit(2)
	}
	g, err := guard.New(guard.Options{Auth: auth, RuleSets: rules(), Logger: log})
	if err != nil {
		log.Error("guard", "err", err)
		os.Exit(2)
	}
	srv := &http.Server{Addr: *addr, Handler: newAPI(g, *namespace), ReadHeaderTimeout: 5 * time.Second}
	log.Info("resource-server", "addr", *addr, "issuer", *issuer)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}
