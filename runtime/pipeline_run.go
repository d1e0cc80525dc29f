package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"
)

// Run runs ev through the rules in order and settles the decision. It
// changes ev in place, as later rules must see it: the stored profile is
// merged into ev.User (keys the IdP sent win), a missing client name and
// metadata are filled in, every rule's metadata patch is merged into
// ev.User and the authorization rule's answer lands in ev.Authorization.
//
// A deny is a Result with Decision.Allowed false; on a deny the token claims
// and scopes are cleared but the metadata patches requested so far are kept,
// persisted and returned, as in Auth0 Actions. Run returns an error only
// when the run itself failed: the caller's context ended, or loading or
// persisting the stored profile failed.
func (p *Pipeline) Run(ctx context.Context, ev *Event) (*Result, error) {
	return p.run(ctx, ev, true)
}

// DryRun is Run without persisting: the stored profile is read and merged
// as at a login, the metadata patches are computed and returned, nothing is
// written. The dashboard's "try a login" runs the serving pipeline this way.
func (p *Pipeline) DryRun(ctx context.Context, ev *Event) (*Result, error) {
	return p.run(ctx, ev, false)
}

func (p *Pipeline) run(ctx context.Context, ev *Event, persist bool) (*Result, error) {
	if ev == nil {
		return nil, fmt.Errorf("%w: no event", ErrInvalid)
	}
	start := p.now()
	deadline := start.Add(p.budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pipeline not started: %w", err)
	}
	res := &Result{Trace: make([]TraceEntry, 0, len(p.steps))}
	if err := p.prepare(ctx, ev, res); err != nil {
		return nil, err
	}

	out := p.cmds.Get().(*Commands)
	defer p.cmds.Put(out)

	// One allocation for every rule's context of this run (none is reused:
	// a rule's context stays its own even past its return).
	rcs := make([]ruleCtx, len(p.steps))
	deny, allow := -1, -1 // step index of the first deny and allow vote
	var denyAccess Access
	failed := false
	for i := range p.steps {
		s := &p.steps[i]
		out.Reset()
		te := TraceEntry{Rule: s.name, Kind: s.kind}
		t0 := p.now()
		err := p.runStep(ctx, s, &rcs[i], ev, out, t0, deadline)
		te.Duration = p.now().Sub(t0)
		if err == nil {
			err = p.checkOutput(out)
		}
		if len(out.Log) > 0 {
			te.Log = append([]LogLine(nil), out.Log...)
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, fmt.Errorf("pipeline stopped in rule %q: %w", s.name, cerr)
			}
			// The trace names the rule and the cause (e.g. the refused
			// claim); the decision's reason stays generic because it
			// reaches the end user through the IdP.
			te.Error = ruleError(s.name, err).Error()
			te.Cause = err
			p.log.LogAttrs(ctx, slog.LevelWarn, "rule failed",
				slog.String("rule", s.name), slog.String("on_error", s.onError.String()), slog.String("error", err.Error()))
			if s.onError == OnErrorSkip {
				te.Skipped = true
				res.Trace = append(res.Trace, te)
				continue
			}
			// Fail closed: no allow vote overrides a failed rule.
			te.Vote = Deny
			res.Trace = append(res.Trace, te)
			res.Decision = Decision{Reason: fmt.Sprintf("rule %q failed", s.name), Code: CodeAccessDenied, Rule: s.name}
			failed = true
			break
		}
		te.Vote = out.Access.Vote
		p.apply(res, ev, out)
		res.Trace = append(res.Trace, te)
		if out.Access.Vote == Deny {
			if deny < 0 {
				deny, denyAccess = i, out.Access
			}
			if p.matrix.Final(Deny) {
				break // a deny is final: no token will carry later claims
			}
		} else if out.Access.Vote == Allow && allow < 0 {
			allow = i
		}
	}
	if !failed {
		res.Decision = p.decide(deny, allow, denyAccess)
	}
	if res.Decision.Allowed {
		p.enforceBudget(res, loginContextSize(ev, res))
	}
	if !res.Decision.Allowed {
		res.IDTokenClaims, res.AccessTokenClaims = nil, nil
		res.ScopesAdded, res.ScopesRemoved = nil, nil
	}
	if !persist {
		return res, nil
	}
	if err := p.persist(ctx, ev, res); err != nil {
		return nil, err
	}
	return res, nil
}

// decide applies the decision matrix (Matrix, shared with runtime/guard):
// with precedence deny any deny wins, with precedence allow any allow wins;
// all abstaining gives the default.
func (p *Pipeline) decide(deny, allow int, denyAccess Access) Decision {
	v, at := p.matrix.Decide(deny, allow)
	switch {
	case v == Deny && at >= 0:
		return Decision{Reason: denyAccess.Reason, Code: denyAccess.Code, Rule: p.steps[at].name}
	case v == Deny:
		return Decision{Reason: "no rule allowed the login", Code: CodeAccessDenied}
	case at >= 0:
		return Decision{Allowed: true, Rule: p.steps[at].name}
	default:
		return Decision{Allowed: true}
	}
}

// runStep runs one rule inline on the caller's goroutine. Native rules are
// trusted Go: a goroutine per call could not stop a rule that ignores its
// context anyway (Go cannot kill a goroutine) and would cost a goroutine and
// a channel per rule per login. Instead the rule's context carries its
// deadline (min of its timeout and the run's budget) for blocking I/O to
// honour, and a rule that returns after its deadline is a timeout failure:
// its output is discarded. WebAssembly rules stop themselves at the deadline
// (the wasm host interrupts the guest when the context is done).
func (p *Pipeline) runStep(ctx context.Context, s *step, rc *ruleCtx, ev *Event, out *Commands, t0, budgetEnd time.Time) error {
	if !t0.Before(budgetEnd) {
		return fmt.Errorf("%w: the pipeline budget of %s ran out before the rule started", ErrTimeout, p.budget)
	}
	limit, byBudget := t0.Add(s.timeout), false
	if budgetEnd.Before(limit) {
		limit, byBudget = budgetEnd, true
	}
	rc.parent, rc.deadline, rc.now = ctx, limit, p.now
	err := p.call(rc, s, ev, out)
	rc.release()
	took := p.now().Sub(t0)
	overran := took > limit.Sub(t0)
	if err == nil && !overran {
		return nil
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !overran {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if byBudget {
		return fmt.Errorf("%w: the pipeline budget of %s ran out (rule ran %s)", ErrTimeout, p.budget, took.Round(time.Microsecond))
	}
	return fmt.Errorf("%w: rule ran %s, its limit is %s", ErrTimeout, took.Round(time.Microsecond), s.timeout)
}

// call runs the rule and turns a panic into an error, so that a broken rule
// fails its login and never the process.
func (p *Pipeline) call(ctx context.Context, s *step, ev *Event, out *Commands) (err error) {
	defer func() {
		if v := recover(); v != nil {
			p.log.LogAttrs(ctx, slog.LevelError, "rule panicked",
				slog.String("rule", s.name), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("%w: %v", ErrPanic, v)
		}
	}()
	return s.rule.Run(ctx, ev, out)
}

// prepare merges the stored profile into the event and fills in the client.
// A store whose availability policy allows it answers ErrDegraded: the
// login goes on without the stored profile, flagged in res.
func (p *Pipeline) prepare(ctx context.Context, ev *Event, res *Result) error {
	if p.profiles != nil && ev.User.UserID != "" {
		prof, err := p.profiles.Profile(ctx, ev.User.UserID)
		switch {
		case err == nil, errors.Is(err, ErrNotFound):
		case errors.Is(err, ErrDegraded):
			p.log.LogAttrs(ctx, slog.LevelWarn, "login without the stored profile", slog.String("user", ev.User.UserID), slog.String("error", err.Error()))
			res.Degraded = append(res.Degraded, DegradedProfile)
			prof = Profile{}
		default:
			return fmt.Errorf("load stored profile of user %q: %w", ev.User.UserID, err)
		}
		ev.User.AppMetadata = overlay(prof.AppMetadata, ev.User.AppMetadata)
		ev.User.UserMetadata = overlay(prof.UserMetadata, ev.User.UserMetadata)
	}
	if p.clients != nil && ev.Client.ClientID != "" && (ev.Client.Name == "" || len(ev.Client.Metadata) == 0) {
		c, err := p.clients.LookupClient(ctx, ev.Client.ClientID)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return fmt.Errorf("look up client %q: %w", ev.Client.ClientID, err)
		default:
			fillClient(&ev.Client, c)
		}
	}
	if ev.Transaction.Audience == "" {
		// An IdP that names the audience only at some grants (Hydra v2.3
		// sends an empty granted_audience for authorization_code and the
		// granted one at refresh) would otherwise give the first token
		// fewer API roles than its refresh: the application's default
		// audience stands in for the one not sent.
		if a := strings.TrimSpace(ev.Client.Metadata[DefaultAudienceKey]); a != "" {
			ev.Transaction.Audience = a
		}
	}
	return nil
}

// DefaultAudienceKey is the client metadata key of the audience a login
// resolves for when the IdP sends none.
const DefaultAudienceKey = "default_audience"

// overlay returns the stored object with the IdP-sent one merged over it:
// keys the IdP sends win (objects merge deeply, other values replace).
// stored is the caller's (ProfileStore.Profile returns a copy), so it is
// merged into without another copy.
func overlay(stored, sent map[string]any) map[string]any {
	if len(stored) == 0 {
		return sent
	}
	return MergePatch(stored, sent)
}

// fillClient adds what the IdP did not send; what it sent wins.
func fillClient(dst *Client, known Client) {
	if dst.Name == "" {
		dst.Name = known.Name
	}
	if len(known.Metadata) == 0 {
		return
	}
	md := make(map[string]string, len(dst.Metadata)+len(known.Metadata))
	for k, v := range known.Metadata {
		md[k] = v
	}
	for k, v := range dst.Metadata {
		md[k] = v
	}
	dst.Metadata = md
}

// apply folds one rule's checked commands into the result and the event.
func (p *Pipeline) apply(res *Result, ev *Event, out *Commands) {
	for _, c := range out.IDToken.Claims {
		if res.IDTokenClaims == nil {
			res.IDTokenClaims = make(Claims, 0, 8)
		}
		res.IDTokenClaims.Set(c.Name, c.Value)
	}
	for _, c := range out.AccessToken.Claims {
		if res.AccessTokenClaims == nil {
			res.AccessTokenClaims = make(Claims, 0, 8)
		}
		res.AccessTokenClaims.Set(c.Name, c.Value)
	}
	for _, s := range out.AccessToken.AddScopes {
		res.ScopesRemoved = without(res.ScopesRemoved, s)
		res.ScopesAdded = withScope(res.ScopesAdded, s)
	}
	for _, s := range out.AccessToken.RemoveScopes {
		res.ScopesAdded = without(res.ScopesAdded, s)
		res.ScopesRemoved = withScope(res.ScopesRemoved, s)
	}
	if len(out.AppMetadata) > 0 {
		res.AppMetadata = composePatch(res.AppMetadata, out.AppMetadata)
		ev.User.AppMetadata = patchEvent(ev.User.AppMetadata, out.AppMetadata)
	}
	if len(out.UserMetadata) > 0 {
		res.UserMetadata = composePatch(res.UserMetadata, out.UserMetadata)
		ev.User.UserMetadata = patchEvent(ev.User.UserMetadata, out.UserMetadata)
	}
	if out.Authorization != nil {
		ev.Authorization = out.Authorization
		res.Authorization = out.Authorization
	}
}

// patchEvent is MergePatch for the event's metadata during a run, copy on
// write: every map on a path the patch changes is copied one level before
// it changes, and what lies beside those paths is shared rather than
// deep-copied. No map the event held is changed in place (not even the
// top level, which MergePatch changes), so a value a rule took from the
// event — a claim holding a metadata object — keeps what it had. The
// result equals MergePatch(CloneMap(dst), patch) (TestPatchEventIsMergePatch);
// the patch's values are copied as MergePatch copies them.
func patchEvent(dst, patch map[string]any) map[string]any {
	if len(patch) == 0 {
		return dst
	}
	out := make(map[string]any, len(dst)+len(patch))
	for k, v := range dst {
		out[k] = v
	}
	for k, pv := range patch {
		if pv == nil {
			delete(out, k)
			continue
		}
		if pm, ok := pv.(map[string]any); ok {
			dm, _ := out[k].(map[string]any)
			out[k] = patchEvent(dm, pm)
			continue
		}
		out[k] = cloneValue(pv)
	}
	return out
}

func withScope(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func without(list []string, s string) []string {
	for i, x := range list {
		if x == s {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// composePatch folds patch into the accumulated patch acc so that applying
// acc once equals applying every patch in turn: objects compose key by key,
// other values (null deletions included) replace. acc owns its nested maps;
// patch is copied, never shared.
func composePatch(acc, patch map[string]any) map[string]any {
	if acc == nil {
		acc = make(map[string]any, len(patch))
	}
	for k, v := range patch {
		if pm, ok := v.(map[string]any); ok {
			if am, ok := acc[k].(map[string]any); ok {
				acc[k] = composePatch(am, pm)
				continue
			}
		}
		acc[k] = cloneValue(v)
	}
	return acc
}

// persist writes the run's metadata patches to the stored profile.
func (p *Pipeline) persist(ctx context.Context, ev *Event, res *Result) error {
	if p.profiles == nil || ev.User.UserID == "" || (len(res.AppMetadata) == 0 && len(res.UserMetadata) == 0) {
		return nil
	}
	if _, err := p.profiles.PatchProfile(ctx, ev.User.UserID, res.AppMetadata, res.UserMetadata); err != nil {
		if errors.Is(err, ErrDegraded) {
			p.log.LogAttrs(ctx, slog.LevelWarn, "metadata patch not persisted", slog.String("user", ev.User.UserID), slog.String("error", err.Error()))
			res.Degraded = append(res.Degraded, DegradedPatch)
			return nil
		}
		return fmt.Errorf("persist metadata of user %q: %w", ev.User.UserID, err)
	}
	return nil
}
