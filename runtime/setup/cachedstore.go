package setup

import (
	"context"

	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/cache"
)

// invalidating wraps st so that every write invalidates the policy cache
// before it returns (this node's next login misses; other nodes hear the
// new revision on the cache's channel). It keeps the store's write paths:
// a store that commits with a footprint (authz.Committer: the admin
// service's fast path, O(what changed)) stays one, and a bulk importer
// stays one.
func invalidating(st DataStore, pc *cache.Cache) DataStore {
	w := cachedWrites{DataStore: st, pc: pc}
	if c, ok := st.(authz.Committer); ok {
		return cachedCommits{cachedWrites: w, c: c}
	}
	return w
}

// cachedWrites is a store whose writes invalidate the policy cache.
type cachedWrites struct {
	DataStore
	pc *cache.Cache
}

func (s cachedWrites) Apply(ctx context.Context, expected uint64, ops ...authz.Op) (uint64, error) {
	return s.pc.Writer(s.DataStore).Apply(ctx, expected, ops...)
}

// Import loads doc with the store's bulk loader when it has one (Redis:
// pipelined batches, progress), else with one ReplaceDocument.
func (s cachedWrites) Import(ctx context.Context, expected uint64, doc *authz.Document, progress func(done, total int)) (uint64, error) {
	im, ok := s.DataStore.(Importer)
	if !ok {
		return s.Apply(ctx, expected, &authz.ReplaceDocument{Doc: doc})
	}
	rev, err := im.Import(ctx, expected, doc, progress)
	if err != nil {
		return rev, err
	}
	s.pc.Invalidate(ctx, rev)
	return rev, nil
}

// cachedCommits is cachedWrites over an authz.Committer.
type cachedCommits struct {
	cachedWrites
	c authz.Committer
}

// Commit invalidates exactly as Apply does: on success, at the revision
// the write produced.
func (s cachedCommits) Commit(ctx context.Context, expected uint64, reads authz.Footprint, ops ...authz.Op) (authz.Change, error) {
	ch, err := s.c.Commit(ctx, expected, reads, ops...)
	if err != nil {
		return ch, err
	}
	s.pc.Invalidate(ctx, ch.Revision)
	return ch, nil
}
