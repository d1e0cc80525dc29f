// Package login serves the IdP-facing login endpoints: claimsmith's native
// triggers and the dialects of Ory Hydra, Zitadel, Supabase and the Auth0
// Authorization Extension. Each dialect is a small Dialect (its credentials,
// its body format, its answer) declared by a Kind (its name, routes and
// configuration section); one Handler runs them all through the same steps,
// on the platform of package hooks (body limit, errors, metrics, reload).
package login

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

// Dialect is one IdP's way of calling one route.
type Dialect interface {
	// Accept checks the credentials the request's headers carry, before any
	// body is read, and starts the exchange.
	Accept(r *http.Request) (Exchange, error)
}

// Exchange is one request of a Dialect once its headers were accepted.
type Exchange interface {
	// Verify authenticates the body (a signature over it, and the replay
	// check of a signed message; nothing to do for a key in a header).
	// release, when not nil, forgets a signed message again: Handler calls
	// it when the request fails on our side (5xx), so the IdP's retry is
	// not refused as a replay.
	Verify(ctx context.Context, body []byte) (release func(context.Context), err error)
	// Decode maps the verified body to the login to run.
	Decode(body []byte) (Login, error)
	// Answer is the IdP's response to the result: a status and a JSON
	// body (nil: none).
	Answer(ctx context.Context, l Login, res *runtime.Result) (status int, body any, err error)
}

// headerAuthenticated is an Exchange that knows whether Accept already
// authenticated its caller (a bearer or API key in a header). Its body is
// then read outside the budget of unauthenticated bodies; an Exchange that
// does not say is unauthenticated until Verify.
type headerAuthenticated interface {
	headerAuthenticated() bool
}

// Login is a decoded request: the event to run and what to log it by.
type Login struct {
	Event *runtime.Event
	// TraceID names the login in logs and the X-Claimsmith-Trace-Id
	// header ("": the event's transaction id, else a new random id). An
	// empty transaction id is set to it.
	TraceID string
	// Attrs are the dialect's own facts for the log line (caller,
	// function, grant type…).
	Attrs []slog.Attr
}

// Handler is the one handler of every dialect: authenticate, require
// JSON, read the body under the limit, verify, decode, run, answer. Every
// refusal and failure is answered by hooks.WriteError.
type Handler struct {
	// Name is the dialect's name (its Kind's), for logs.
	Name    string
	Dialect Dialect
	// Run is what a login runs: the pipeline (the policy endpoint resolves
	// a policy instead).
	Run     runtime.Enricher
	MaxBody int64 // 0: hooks.DefaultMaxBody
	// Budget bounds the bodies read before their sender is authenticated
	// (nil: unbounded, tests).
	Budget *hooks.BodyBudget
	Log    *slog.Logger

	bufs answerBuffers // answers that encode themselves (native_encode.go)
}

// TraceHeader carries the trace id of every answered login.
const TraceHeader = "X-Claimsmith-Trace-Id"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, body, trace, err := h.serve(w, r)
	if err != nil {
		log := logOrDiscard(h.Log)
		st, _ := hooks.StatusOf(err)
		lvl := slog.LevelInfo // the caller's mistake
		if st >= 500 {
			lvl = slog.LevelError
			// The answer names only the trace id (the error text may hold
			// internal addresses); the log line has the error under it.
			if trace == "" {
				trace = hooks.NewTraceID()
			}
			w.Header().Set(TraceHeader, trace)
		}
		log.LogAttrs(r.Context(), lvl, "hook request refused", slog.String("dialect", h.Name),
			slog.String("path", r.URL.Path), slog.String("trace_id", trace), slog.String("error", err.Error()))
		hooks.WriteErrorTrace(w, err, trace)
		return
	}
	if body == nil {
		w.WriteHeader(status)
		return
	}
	if a, ok := body.(jsonAppender); ok && h.bufs.write(w, status, a) {
		return
	}
	hooks.WriteJSON(w, status, body)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (status int, body any, trace string, err error) {
	x, err := h.Dialect.Accept(r)
	if err != nil {
		return 0, nil, "", err
	}
	if err := hooks.RequireJSON(r); err != nil {
		return 0, nil, "", err
	}
	budget := h.Budget
	if ha, ok := x.(headerAuthenticated); ok && ha.headerAuthenticated() {
		budget = nil
	}
	raw, authenticated, err := hooks.ReadBodyBudget(w, r, h.MaxBody, budget)
	if err != nil {
		return 0, nil, "", err
	}
	release, err := x.Verify(r.Context(), raw)
	// Authenticated or refused: either way no longer an unauthenticated body.
	authenticated()
	if err != nil {
		return 0, nil, "", err
	}
	if release != nil {
		defer func() {
			if st, _ := hooks.StatusOf(err); err != nil && st >= 500 {
				release(r.Context())
			}
		}()
	}
	// JSON is UTF-8 (RFC 8259 §8.1); encoding/json would silently turn
	// invalid bytes into U+FFFD, so an id would reach the store rewritten.
	if !utf8.Valid(raw) {
		return 0, nil, "", fmt.Errorf("%w: request body is not valid UTF-8", runtime.ErrInvalid)
	}
	l, err := x.Decode(raw)
	if err != nil {
		return 0, nil, "", err
	}
	ev := l.Event
	// Every dialect's ids enter here; one check refuses what the store
	// would rewrite (invalid UTF-8) or should never hold (absurd lengths).
	if err := runtime.CheckID("user_id", ev.User.UserID); err != nil {
		return 0, nil, "", err
	}
	if err := runtime.CheckID("client_id", ev.Client.ClientID); err != nil {
		return 0, nil, "", err
	}
	if l.TraceID == "" {
		l.TraceID = ev.Transaction.ID
	}
	if l.TraceID == "" {
		l.TraceID = hooks.NewTraceID()
	}
	if ev.Transaction.ID == "" {
		ev.Transaction.ID = l.TraceID
	}
	res, err := h.Run.Run(r.Context(), ev)
	if err != nil {
		return 0, nil, l.TraceID, fmt.Errorf("pipeline: %w", err)
	}
	// An allowed login is logged at debug: at thousands a second the line
	// cost 3–4 % of a login's CPU, and claimsmith_login_decisions_total and
	// claimsmith_http_requests_total count them. A denial stays at info.
	lvl := slog.LevelDebug
	if !res.Decision.Allowed {
		lvl = slog.LevelInfo
	}
	if log := logOrDiscard(h.Log); log.Enabled(r.Context(), lvl) {
		attrs := append([]slog.Attr{
			slog.String("trace_id", l.TraceID), slog.String("dialect", h.Name), slog.String("trigger", string(ev.Trigger)),
			slog.String("user", ev.User.UserID), slog.String("client", ev.Client.ClientID),
			slog.Bool("allowed", res.Decision.Allowed), slog.String("rule", res.Decision.Rule),
		}, l.Attrs...)
		log.LogAttrs(r.Context(), lvl, "login", attrs...)
	}
	status, body, err = x.Answer(r.Context(), l, res)
	if err == nil {
		w.Header().Set(TraceHeader, l.TraceID)
	}
	return status, body, l.TraceID, err
}

// Route is one route of a Kind.
type Route struct {
	Pattern string // net/http ServeMux pattern
	Summary string // one line for --help
}

// Kind is a dialect claimsmith speaks: its name (the metrics label and the
// name in logs), its routes, an example of its section of the hooks
// configuration, and how its handlers are built from that section. Adding
// a dialect is a Config field for its section and one Kind in Kinds;
// routes, labels, reload and --help follow.
type Kind struct {
	Name    string
	Routes  []Route
	Example string // its section of the hooks configuration, YAML (for Help)
	// Build makes the handlers of the Kind's routes, indexed like Routes,
	// from its section; nil when the section is absent (not served).
	// Errors name the configuration key.
	Build func(c *Config, deps Deps) ([]*Handler, error)
}

// Kinds are the dialects claimsmith speaks, in the order --help lists them.
func Kinds() []Kind {
	return []Kind{nativeKind(), hydraKind(), zitadelKind(), supabaseKind(), policyKind()}
}

// Routes are every dialect's routes, labelled with their Kind's name and
// without handlers: what a hooks.Reloader mounts so that a reload can turn
// any dialect on or off.
func Routes() []hooks.Route {
	var out []hooks.Route
	for _, k := range Kinds() {
		for _, rt := range k.Routes {
			out = append(out, hooks.Route{Pattern: rt.Pattern, Label: k.Name})
		}
	}
	return out
}

// Help documents the endpoints and the hooks section for
// `claimsmith serve -h`.
func Help() string {
	var b strings.Builder
	b.WriteString("\nIdP-facing endpoints (only those configured in the hooks section are served;\n" +
		"secrets come from the environment variables the *_env keys name):\n")
	for _, k := range Kinds() {
		for _, rt := range k.Routes {
			fmt.Fprintf(&b, "  %-46s %s\n", rt.Pattern, rt.Summary)
		}
	}
	b.WriteString("\n  hooks:\n    max_body: 262144                  # bytes per request body (default 256 KiB)\n" +
		"    replay_rate: 1000                 # peak signed logins/s per signed caller the in-process replay cache holds (default 1000);\n" +
		"                                      # with store.backend redis, ids are kept in Redis instead (shared by every node)\n" +
		"    body_budget: 33554432             # bytes of request bodies read before their sender is authenticated (signed\n" +
		"                                      # webhooks), all requests together (default 32 MiB); over it: 503 + Retry-After\n")
	for _, k := range Kinds() {
		for _, line := range strings.Split(strings.TrimRight(k.Example, "\n"), "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String()
}

// logOrDiscard returns l, or a logger that discards, so handlers built in
// tests without a logger still work.
func logOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
