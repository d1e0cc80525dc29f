package guard

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// Verdict is one voter's say, with a reason for logs and 403 bodies.
type Verdict struct {
	Vote   runtime.Vote
	Reason string
}

// Allow, Deny and Abstain are verdict shorthands.
func Allow(reason string) Verdict { return Verdict{Vote: runtime.Allow, Reason: reason} }
func Deny(reason string) Verdict  { return Verdict{Vote: runtime.Deny, Reason: reason} }
func Abstain() Verdict            { return Verdict{} }

// AuthzRequest is what voters see: the caller and the request being
// authorized. HTTP is nil when the guard runs for a gateway (forward-auth).
type AuthzRequest struct {
	Principal *Principal
	Method    string
	Host      string
	Path      string
	Query     string
	RemoteIP  string
	// Resource is the route's resource name ("" when it has none).
	Resource string
	Route    *Route
	HTTP     *http.Request
}

// Voter votes on one request. An error is a failed voter: it counts as a
// deny (fail closed), as a failing login rule with on_error deny does.
type Voter interface {
	Vote(ctx context.Context, req *AuthzRequest) (Verdict, error)
}

// VoterFunc adapts a function to Voter.
type VoterFunc func(ctx context.Context, req *AuthzRequest) (Verdict, error)

// Vote calls f.
func (f VoterFunc) Vote(ctx context.Context, req *AuthzRequest) (Verdict, error) { return f(ctx, req) }

// Named gives a voter a name for decisions and logs.
func Named(name string, v Voter) Voter { return named{name: name, Voter: v} }

type named struct {
	name string
	Voter
}

func (n named) Name() string { return n.name }

func voterName(v Voter, i int) string {
	if n, ok := v.(interface{ Name() string }); ok {
		return n.Name()
	}
	return fmt.Sprintf("voter[%d]", i)
}

// Route is per-endpoint authorization metadata (LoopBack's @authorize).
type Route struct {
	// AllowedRoles: holding one votes allow, holding none votes deny.
	AllowedRoles []string
	// DeniedRoles: holding one votes deny, else abstain.
	DeniedRoles []string
	// Scopes: all granted votes allow, one missing votes deny
	// (insufficient_scope).
	Scopes []string
	// Resource names what the route serves (Casbin's object, voters' input).
	Resource string
	// Voters run after the guard's global authorizers and the built-in
	// votes above, in order.
	Voters []Voter
	// Skip turns authorization off for the route: anyone may call it; a
	// valid token still yields a principal.
	Skip bool
}

// Decision is the settled outcome of a route's votes.
type Decision struct {
	Allowed bool
	// Voter names the voter whose vote decided ("" when the default did).
	Voter  string
	Reason string
	// Votes is the number of voters that ran.
	Votes int
}

// authorize runs the global authorizers, the route's built-in votes and its
// voters, and settles them with m (runtime.Matrix, the login pipeline's).
// Under a precedence vote it stops early: nothing later can change it.
func authorize(ctx context.Context, m runtime.Matrix, global []Voter, req *AuthzRequest, log *slog.Logger) (Decision, error) {
	t := runtime.NewTally()
	var names []string
	var reasons []string
	var scopeMiss []string
	record := func(name string, v Verdict) bool {
		t.Add(v.Vote)
		names = append(names, name)
		reasons = append(reasons, v.Reason)
		return m.Settles(v.Vote)
	}
	run := func(v Voter, name string) bool {
		vd, err := callVoter(ctx, v, req)
		if err != nil {
			log.WarnContext(ctx, "guard: voter failed; counted as deny", "voter", name, "err", err)
			vd = Deny("voter failed")
		}
		return record(name, vd)
	}
	r := req.Route
	p := req.Principal
	done := false
	for i, v := range global {
		if done = run(v, voterName(v, i)); done {
			break
		}
	}
	if !done && r != nil {
		if len(r.DeniedRoles) > 0 {
			vd := Abstain()
			if p.HasRole(r.DeniedRoles...) {
				vd = Deny("holds a denied role")
			}
			done = record("denied_roles", vd)
		}
		if !done && len(r.AllowedRoles) > 0 {
			vd := Deny("holds none of the roles " + strings.Join(r.AllowedRoles, ", "))
			if p.HasRole(r.AllowedRoles...) {
				vd = Allow("holds an allowed role")
			}
			done = record("allowed_roles", vd)
		}
		if !done && len(r.Scopes) > 0 {
			vd := Allow("scopes granted")
			if scopeMiss = missing(p.Scopes, r.Scopes); len(scopeMiss) > 0 {
				vd = Deny("missing scope " + strings.Join(scopeMiss, " "))
			}
			done = record("scopes", vd)
		}
		for i, v := range r.Voters {
			if done {
				break
			}
			done = run(v, voterName(v, len(global)+i))
		}
	}
	vote, at := t.Decide(m)
	d := Decision{Allowed: vote == runtime.Allow, Votes: len(names)}
	if at >= 0 {
		d.Voter, d.Reason = names[at], reasons[at]
	} else {
		d.Reason = "no voter decided; default " + vote.String()
	}
	if !d.Allowed {
		fe := &ForbiddenError{Reason: ErrNotAllowed, Voter: d.Voter, Detail: d.Reason}
		if d.Voter == "scopes" {
			fe.Reason, fe.Scopes = ErrInsufficientScope, r.Scopes
		}
		return d, fe
	}
	return d, nil
}

// callVoter turns a voter's panic into an error.
func callVoter(ctx context.Context, v Voter, req *AuthzRequest) (vd Verdict, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("%w: %v", runtime.ErrPanic, x)
		}
	}()
	vd, err = v.Vote(ctx, req)
	if err == nil && vd.Vote > runtime.Deny {
		err = fmt.Errorf("%w: vote %d", runtime.ErrInvalid, vd.Vote)
	}
	return vd, err
}
