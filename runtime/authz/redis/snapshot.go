package redis

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Snapshot implements authz.Reader: the whole model, read with pipelined
// batches and indexed once per revision (cached until the revision moves).
// It is the admin and export path; logins never call it.
func (s *Store) Snapshot(ctx context.Context) (*authz.Model, error) {
	for attempt := 0; ; attempt++ {
		rev, gen, err := s.revGen(ctx)
		if err != nil {
			return nil, err
		}
		s.snapMu.Lock()
		cached := s.snap
		s.snapMu.Unlock()
		if cached != nil && cached.Revision() == rev {
			s.confirmed.Store(s.opt.Now().UnixNano())
			return cached, nil
		}
		doc, err := s.loadDocument(ctx, s.k.ns(gen))
		if err != nil && !errors.Is(err, errMoved) {
			return nil, err
		}
		after, _, rerr := s.revGen(ctx)
		if rerr != nil {
			return nil, rerr
		}
		if err != nil || after != rev {
			// A write landed while we read: read again.
			if err := backoff(ctx, attempt); err != nil {
				return nil, unavailable("snapshot", err)
			}
			continue
		}
		m := authz.NewModel(doc, rev)
		s.snapMu.Lock()
		if s.snap == nil || s.snap.Revision() <= rev {
			s.snap = m
		}
		s.snapMu.Unlock()
		s.confirmed.Store(s.opt.Now().UnixNano())
		return m, nil
	}
}

func (s *Store) revGen(ctx context.Context) (rev, gen uint64, err error) {
	pipe := s.c.Pipeline()
	r := pipe.Get(ctx, s.k.rev())
	g := pipe.Get(ctx, s.k.gen())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return 0, 0, unavailable("read revision", err)
	}
	rev, _ = r.Uint64()
	gen, _ = g.Uint64()
	return rev, gen, nil
}
