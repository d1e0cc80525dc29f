package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The admin application service: every change to the authorization model
// made by an operator (admin API, CLI) goes through Service.Apply, which
// checks the caller's expected revision, retries a write that lost a race,
// commits the ops and appends the audit record. It reads and audits only the
// records the change touches (authz.Footprint), so a write costs what it
// changes, not the size of the model.

// Store is what the service needs of the authorization store.
type Store interface {
	authz.Reader
	authz.Writer
}

// Caller is who asks for a change; the audit record names it.
type Caller struct {
	KeyID, KeyName string
	// RequestID ties the audit record to the request's logs.
	RequestID string
}

// IfMatch is the revision a caller expects the store to be at. The zero
// value expects nothing: the change is applied to whatever is current.
type IfMatch struct {
	Revision uint64
	Set      bool
}

// Expect is an IfMatch for rev.
func Expect(rev uint64) IfMatch { return IfMatch{Revision: rev, Set: true} }

// Change is one audited write.
type Change struct {
	// Action, Entity and ID describe it in the audit log ("group.create",
	// "group", the group's _id).
	Action, Entity, ID string
	// Ops are the write, when they do not depend on the current state.
	Ops []authz.Op
	// Build, when set, completes the change from the current records named
	// by Reads: it sets Ops (e.g. resolving group names, or refusing to
	// create what exists) and may refine Action, State and Reads. It works
	// on a copy and may run more than once.
	Build func(view *authz.Document, ch *Change) error
	// Reads names the records Build and State look at beyond the ops' own
	// footprints.
	Reads authz.Footprint
	// State renders the audited entity from a document holding the
	// change's records (nil when absent). Nil: no before/after in the record.
	State func(*authz.Document) any
}

// Result is a committed change.
type Result struct {
	// Revision is the store's revision after the write, Previous before it.
	Revision, Previous uint64
	// After holds the records of the change's footprint as the write left
	// them (the whole document for an import).
	After *authz.Document
	// Record is the audit record (Seq 0 when appending it failed: the
	// write stands and the failure is logged).
	Record Record
}

// ServiceConfig wires a Service.
type ServiceConfig struct {
	Store Store
	Audit AuditLog
	Log   *slog.Logger
	Now   func() time.Time
}

// Service is the admin application service. It is safe for concurrent use.
type Service struct {
	store Store
	audit AuditLog
	log   *slog.Logger
	now   func() time.Time
	// writer serialises this process's writes: they would only collide on
	// the store's revision. Writers on other nodes are handled by retrying.
	writer chan struct{}
	// intents is the audit log's write-ahead side, when it has one.
	intents IntentLog
	// reconciled is set once the pending intents were settled.
	reconciled atomic.Bool
}

// NewService checks cfg and returns the service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil {
		return nil, fmt.Errorf("admin service: Store and Audit are required: %w", runtime.ErrInvalid)
	}
	s := &Service{store: cfg.Store, audit: cfg.Audit, log: cfg.Log, now: cfg.Now, writer: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.intents, _ = cfg.Audit.(IntentLog)
	return s, nil
}

// Store returns the authorization store the service writes to.
func (s *Service) Store() Store { return s.store }

// Apply commits a change and audits it. With ifMatch set the store must be
// at that revision (*runtime.ConflictError otherwise). Without it a write
// that loses a race with another node is rebuilt from fresh records and
// retried until ctx ends, so it never fails for contention alone and never
// acts on state it did not see.
func (s *Service) Apply(ctx context.Context, caller Caller, ch Change, ifMatch IfMatch) (Result, error) {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	defer func() { <-s.writer }()
	if s.intents != nil && !s.reconciled.Load() {
		if err := s.reconcileLocked(ctx); err != nil {
			return Result{}, fmt.Errorf("%s: %w", ch.Action, err)
		}
	}
	for attempt := 0; ; attempt++ {
		res, err := s.try(ctx, caller, ch, ifMatch)
		// Only a lost race on the revision is retried; other conflicts
		// (e.g. an ambiguous name) are the caller's to resolve.
		var ce *runtime.ConflictError
		if err == nil || ifMatch.Set || !errors.As(err, &ce) {
			return res, err
		}
		if err := sleep(ctx, attempt); err != nil {
			return Result{}, fmt.Errorf("%s: retrying after concurrent writes: %w", ch.Action, err)
		}
	}
}

// try is one attempt: read the change's records, build and check the ops on
// them, commit against that revision, audit.
func (s *Service) try(ctx context.Context, caller Caller, ch Change, ifMatch IfMatch) (Result, error) {
	var viewRev uint64
	if ch.Build != nil {
		view, rev, err := s.store.Records(ctx, ch.Reads)
		if err != nil {
			return Result{}, err
		}
		if err := checkMatch(ifMatch, rev); err != nil {
			return Result{}, err
		}
		built := ch
		built.Reads = cloneFootprint(ch.Reads)
		if err := ch.Build(view, &built); err != nil {
			return Result{}, err
		}
		ch, viewRev = built, rev
	}
	ops := ch.Ops
	fp := cloneFootprint(ch.Reads)
	fp.Add(authz.FootprintOf(ops...))
	expected := ifMatch.Revision
	if ch.Build != nil {
		expected = viewRev
	}
	// Commit takes 0 as "any revision", so a change pinned to revision 0
	// (an empty store) takes the path below, which checks it itself.
	pinned := ifMatch.Set || ch.Build != nil
	if c, ok := s.store.(authz.Committer); ok && !fp.All && (expected != 0 || !pinned) {
		// One transaction reads the change's records, applies the ops and
		// reports both states: nothing is read twice. Unpinned, the store
		// retries a lost race itself.
		cc, err := c.Commit(ctx, expected, ch.Reads, ops...)
		if err != nil {
			return Result{}, err
		}
		res := Result{Revision: cc.Revision, Previous: cc.Previous, After: cc.After}
		res.Record = s.record(ctx, caller, ch, res, cc.Before)
		return res, nil
	}
	before, rev, err := s.store.Records(ctx, fp)
	if err != nil {
		return Result{}, err
	}
	if err := checkMatch(ifMatch, rev); err != nil {
		return Result{}, err
	}
	if ch.Build != nil && rev != viewRev {
		// A write landed between the two reads: build again.
		return Result{}, &runtime.ConflictError{Expected: viewRev, Actual: rev}
	}
	// Each op behaves on its footprint's records as on the whole model
	// (authz.Op), so the result of the write is known before committing:
	// a refused op never reaches the store, and the audit's after-state is
	// this replay.
	after := before.CopyForWrite()
	for i, op := range ops {
		if err := op.Apply(after); err != nil {
			return Result{}, authz.OpError(i, len(ops), err)
		}
	}
	// The record is complete before the commit: with an intent log it is
	// stored ahead, so a crash after the commit cannot lose it.
	rec := s.newRecord(caller, ch, rev, rev+1, before, after)
	intent := ""
	if s.intents != nil {
		if intent, err = s.intents.BeginIntent(ctx, rec); err != nil {
			return Result{}, fmt.Errorf("%s: storing the audit intent (nothing written): %w", ch.Action, err)
		}
	}
	next, err := s.store.Apply(ctx, rev, ops...)
	if err != nil {
		if intent != "" {
			var ce *runtime.ConflictError
			var rerr error
			if errors.As(err, &ce) {
				// A lost race on the revision commits nothing.
				rerr = s.intents.EndIntent(context.WithoutCancel(ctx), intent)
			} else {
				// Whether a failed commit landed is for the reconciliation
				// to tell from the store's revision.
				rerr = s.reconcileLocked(context.WithoutCancel(ctx))
			}
			if rerr != nil {
				s.log.Error("admin: settling the audit intent of a failed write", "action", ch.Action, "err", rerr)
			}
		}
		return Result{}, err
	}
	if next != rev+1 {
		// Only at revision 0, where Apply cannot check the expected
		// revision (0 means "any"): another write came first. The audit
		// then shows the records as the store holds them now.
		cur, _, err := s.store.Records(ctx, fp)
		if err != nil {
			return Result{}, err
		}
		after = cur
		rec = s.newRecord(caller, ch, rev, next, before, after)
	}
	res := Result{Revision: next, Previous: rev, After: after}
	res.Record = s.appendRecord(ctx, rec, intent)
	return res, nil
}

// cloneFootprint copies f so that adding to the copy never writes into the
// caller's slices.
func cloneFootprint(f authz.Footprint) authz.Footprint {
	var c authz.Footprint
	c.Add(f)
	return c
}

func checkMatch(m IfMatch, rev uint64) error {
	if m.Set && m.Revision != rev {
		return &runtime.ConflictError{Expected: m.Revision, Actual: rev}
	}
	return nil
}

// sleep backs off before a retry: jittered and growing up to ~50 ms, so a
// burst of writers on several nodes spreads out instead of colliding again.
func sleep(ctx context.Context, attempt int) error {
	d := time.Duration(200+rand.IntN(800)) * time.Microsecond << min(attempt, 6)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// record appends the audit record of a committed write.
func (s *Service) record(ctx context.Context, caller Caller, ch Change, res Result, before *authz.Document) Record {
	return s.appendRecord(ctx, s.newRecord(caller, ch, res.Previous, res.Revision, before, res.After), "")
}

// newRecord is the audit record of a write from revision prev to next.
func (s *Service) newRecord(caller Caller, ch Change, prev, next uint64, before, after *authz.Document) Record {
	rec := Record{
		Time: s.now(), KeyID: caller.KeyID, KeyName: caller.KeyName, Action: ch.Action,
		Entity: ch.Entity, EntityID: ch.ID, RevisionBefore: prev, RevisionAfter: next,
		RequestID: caller.RequestID,
	}
	if ch.State != nil {
		rec.Before = rawJSON(ch.State(before))
		rec.After = rawJSON(ch.State(after))
	}
	return rec
}

// appendRecord appends the record of a committed write and ends its
// intent. A failure is logged loudly: the write itself is committed and
// cannot be taken back; with an intent the record is appended by the next
// reconciliation instead of being lost.
func (s *Service) appendRecord(ctx context.Context, rec Record, intent string) Record {
	ctx = context.WithoutCancel(ctx)
	out, err := s.audit.Append(ctx, rec)
	if err != nil {
		s.log.Error("admin: audit record not written", "action", rec.Action, "entity_id", rec.EntityID, "revision", rec.RevisionAfter,
			"key", rec.KeyName, "kept_as_intent", intent != "", "err", err)
		return rec
	}
	if intent != "" {
		if err := s.intents.EndIntent(ctx, intent); err != nil {
			// Reconciliation finds the record already appended and drops
			// the intent then.
			s.log.Warn("admin: ending an audit intent", "intent", intent, "err", err)
		}
	}
	s.log.Info("admin write", "action", rec.Action, "entity_id", rec.EntityID, "revision", rec.RevisionAfter, "key", rec.KeyName, "request_id", rec.RequestID)
	return out
}

// Reconcile settles the audit intents a stopped process left (see
// IntentLog): the record of a write that committed is appended, marked
// Recovered, unless it already was; an intent whose write never committed
// is dropped. It runs before the first write of a Service on its own; a
// server calls it at start-up so the audit log is complete before anyone
// reads it. Only the data dir's owner may call it.
func (s *Service) Reconcile(ctx context.Context) error {
	if s.intents == nil {
		return nil
	}
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writer }()
	return s.reconcileLocked(ctx)
}

// reconcileLocked is Reconcile for a caller holding the writer slot.
func (s *Service) reconcileLocked(ctx context.Context) error {
	pending, err := s.intents.PendingIntents(ctx)
	if err != nil || len(pending) == 0 {
		if err == nil {
			s.reconciled.Store(true)
		}
		return err
	}
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return fmt.Errorf("reconciling audit intents: %w", err)
	}
	// A record appended before the crash is among the newest: the intents
	// are the last writes, and each intent names a write of its own.
	recent, err := s.audit.List(ctx, AuditQuery{PerPage: min(2*len(pending)+16, MaxPerPage)})
	if err != nil {
		return fmt.Errorf("reconciling audit intents: %w", err)
	}
	for _, in := range pending {
		r := in.Record
		switch {
		case rev < r.RevisionAfter:
			// Writes are serialised (this service's writer slot, the
			// owner lock across processes) and revisions only grow: the
			// store never reached the revision this write would have made.
			s.log.Info("admin: dropping the audit intent of a write that did not commit", "action", r.Action, "entity_id", r.EntityID,
				"revision", r.RevisionAfter, "store_revision", rev)
		case audited(recent.Records, r):
		default:
			r.Recovered = true
			if _, err := s.audit.Append(ctx, r); err != nil {
				return fmt.Errorf("reconciling audit intents: appending the record of revision %d: %w", r.RevisionAfter, err)
			}
			s.log.Warn("admin: appended the audit record of a write committed before a crash", "action", r.Action,
				"entity_id", r.EntityID, "revision", r.RevisionAfter, "key", r.KeyName, "request_id", r.RequestID)
		}
		if err := s.intents.EndIntent(ctx, in.ID); err != nil {
			return fmt.Errorf("reconciling audit intents: %w", err)
		}
	}
	s.reconciled.Store(true)
	return nil
}

// audited reports whether recs hold the record of r's write.
func audited(recs []Record, r Record) bool {
	for _, x := range recs {
		if x.RevisionAfter == r.RevisionAfter && x.Action == r.Action && x.KeyID == r.KeyID && x.RequestID == r.RequestID && x.EntityID == r.EntityID {
			return true
		}
	}
	return false
}

func rawJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	// Entities encode themselves compactly; calling their encoder directly
	// spares json.Marshal's second pass over a large group.
	var b []byte
	var err error
	if m, ok := v.(json.Marshaler); ok {
		b, err = m.MarshalJSON()
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil || string(b) == "null" {
		return nil
	}
	return b
}

// ---- reads ----

// Model returns the whole current model (lists, exports, effective views).
func (s *Service) Model(ctx context.Context) (*authz.Model, error) { return s.store.Snapshot(ctx) }

// Records returns the records of fp at one revision.
func (s *Service) Records(ctx context.Context, fp authz.Footprint) (*authz.Document, uint64, error) {
	return s.store.Records(ctx, fp)
}

// AuditLog pages through the audit records.
func (s *Service) AuditLog(ctx context.Context, q AuditQuery) (AuditPage, error) {
	return s.audit.List(ctx, q)
}
