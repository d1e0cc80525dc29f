// Package memory is an in-process authz.Store: the whole model in memory,
// lost on exit. Tests and `claimsmith test` use it; it defines the reference
// behaviour every backend must match (authztest).
package memory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Options configure a Store.
type Options struct {
	// ProfileLimit caps each profile object in bytes (0: authz.DefaultProfileLimit).
	ProfileLimit int
}

// Store is an in-memory authz.Store. Readers load an immutable *authz.Model
// without locking; writers serialise on a mutex, apply ops to a copy of the
// document and swap the new model in.
type Store struct {
	opt   Options
	model atomic.Pointer[authz.Model]

	mu       sync.Mutex // serialises writers of model and profiles
	profiles map[string]runtime.Profile
}

var (
	_ authz.Store         = (*Store)(nil)
	_ authz.ProfileLister = (*Store)(nil)
)

// New returns an empty store at revision 0.
func New(opt Options) *Store {
	s := &Store{opt: opt, profiles: map[string]runtime.Profile{}}
	s.model.Store(authz.NewModel(&authz.Document{}, 0))
	return s
}

// ResolvePolicy implements authz.PolicyResolver.
func (s *Store) ResolvePolicy(ctx context.Context, q authz.PolicyQuery) (authz.Policy, error) {
	if err := ctx.Err(); err != nil {
		return authz.Policy{}, err
	}
	return s.model.Load().Resolve(q), nil
}

// Application implements authz.ApplicationReader.
func (s *Store) Application(ctx context.Context, clientID string) (authz.Application, error) {
	if err := ctx.Err(); err != nil {
		return authz.Application{}, err
	}
	a, ok := s.model.Load().Application(clientID)
	if !ok {
		return authz.Application{}, fmt.Errorf("application %q: %w", clientID, runtime.ErrNotFound)
	}
	return a, nil
}

// Revision implements authz.Reader.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.model.Load().Revision(), nil
}

// Snapshot implements authz.Reader.
func (s *Store) Snapshot(ctx context.Context) (*authz.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.model.Load(), nil
}

// Records implements authz.RecordReader.
func (s *Store) Records(ctx context.Context, fp authz.Footprint) (*authz.Document, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m := s.model.Load()
	return m.Records(fp), m.Revision(), nil
}

// Commit implements authz.Committer.
func (s *Store) Commit(ctx context.Context, expected uint64, reads authz.Footprint, ops ...authz.Op) (authz.Change, error) {
	fp := authz.FootprintOf(ops...)
	if fp.All || reads.All {
		return authz.Change{}, &runtime.ValidationError{Entity: "op", Field: "footprint",
			Reason: "covers the whole model: use Apply (an import is not a record change)"}
	}
	fp.Add(reads)
	var ch authz.Change
	_, err := s.apply(ctx, expected, ops, func(before, after *authz.Model) {
		was := before.Records(fp)
		ch = authz.Change{Previous: before.Revision(), Revision: after.Revision(), Before: was, After: after.Records(fp.WithRecordsOf(was))}
	})
	return ch, err
}

// Apply implements authz.Writer.
func (s *Store) Apply(ctx context.Context, expected uint64, ops ...authz.Op) (uint64, error) {
	return s.apply(ctx, expected, ops, nil)
}

// apply commits ops and, when done is set, hands it the models before and
// after.
func (s *Store) apply(ctx context.Context, expected uint64, ops []authz.Op, done func(before, after *authz.Model)) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.model.Load()
	if expected != 0 && expected != cur.Revision() {
		return 0, &runtime.ConflictError{Expected: expected, Actual: cur.Revision()}
	}
	if len(ops) == 0 {
		if done != nil {
			done(cur, cur)
		}
		return cur.Revision(), nil
	}
	doc := cur.Document().CopyForWrite()
	for i, op := range ops {
		if err := op.Apply(doc); err != nil {
			return 0, authz.OpError(i, len(ops), err)
		}
	}
	recs, replace := authz.ImportedProfiles(ops)
	var profiles map[string]runtime.Profile
	if replace {
		profiles = make(map[string]runtime.Profile, len(recs))
		for _, r := range recs {
			p := authz.ProfileFromRecord(r)
			if err := authz.CheckProfile(p, s.opt.ProfileLimit); err != nil {
				return 0, err
			}
			profiles[p.UserID] = p
		}
	}
	next := authz.NewModel(doc, cur.Revision()+1)
	s.model.Store(next)
	if replace {
		s.profiles = profiles
	}
	if done != nil {
		done(cur, next)
	}
	return next.Revision(), nil
}

// Profile implements runtime.ProfileStore.
func (s *Store) Profile(ctx context.Context, userID string) (runtime.Profile, error) {
	if err := ctx.Err(); err != nil {
		return runtime.Profile{}, err
	}
	s.mu.Lock()
	p, ok := s.profiles[userID]
	s.mu.Unlock()
	if !ok {
		p = runtime.Profile{UserID: userID}
	}
	return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID, AppMetadata: p.AppMetadata, UserMetadata: p.UserMetadata}), nil
}

// PatchProfile implements runtime.ProfileStore. It does not change the
// authorization revision: profiles are not part of the policy.
func (s *Store) PatchProfile(ctx context.Context, userID string, appMetadata, userMetadata map[string]any) (runtime.Profile, error) {
	if err := ctx.Err(); err != nil {
		return runtime.Profile{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := authz.MergeProfile(s.profiles[userID], userID, appMetadata, userMetadata, s.opt.ProfileLimit)
	if err != nil {
		return runtime.Profile{}, err
	}
	s.profiles[userID] = next
	return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID, AppMetadata: next.AppMetadata, UserMetadata: next.UserMetadata}), nil
}

// ListProfiles implements authz.ProfileLister.
func (s *Store) ListProfiles(ctx context.Context, fn func(runtime.Profile) error) error {
	s.mu.Lock()
	all := make([]runtime.Profile, 0, len(s.profiles))
	for _, p := range s.profiles {
		all = append(all, p)
	}
	s.mu.Unlock()
	for _, p := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(authz.ProfileFromRecord(authz.ProfileRecord{UserID: p.UserID, AppMetadata: p.AppMetadata, UserMetadata: p.UserMetadata})); err != nil {
			return err
		}
	}
	return nil
}

// Close implements authz.Store.
func (s *Store) Close() error { return nil }
