package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Snapshot implements authz.Reader: the whole model, read with pipelined
// batches and indexed once per revision (cached until the revision moves).
// It is the admin and export path, and the authorization rule reads the
// extension's configuration from it; with LastSnapshot it answers from the
// last snapshot while Redis fails.
func (s *Store) Snapshot(ctx context.Context) (*authz.Model, error) {
	if m := s.standIn(); m != nil {
		return m, nil
	}
	m, err := s.snapshot(ctx)
	if err != nil && !errors.Is(err, ErrDataLoss) {
		if fb := s.fallback(); fb != nil && ctx.Err() == nil {
			return fb, nil
		}
	}
	return m, err
}

// snapshot reads the model from Redis (the refresher calls it directly: it
// is also how a degraded store notices that Redis is back).
func (s *Store) snapshot(ctx context.Context) (*authz.Model, error) {
	for attempt := 0; ; attempt++ {
		started := time.Now()
		rev, gen, mark, err := s.revGenMarker(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.observe(mark, started); err != nil {
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
	rev, gen, _, err = s.revGenMarker(ctx)
	return rev, gen, err
}

// revGenMarker reads the revision, the generation and the store's marker
// ("" when missing) in one round trip.
func (s *Store) revGenMarker(ctx context.Context) (rev, gen uint64, mark string, err error) {
	vals, err := s.c.MGet(ctx, s.k.rev(), s.k.gen(), s.k.marker()).Result()
	if err != nil {
		s.failed(err)
		return 0, 0, "", unavailable("read revision", err)
	}
	s.answered()
	rev, _ = strconv.ParseUint(str(vals[0]), 10, 64)
	gen, _ = strconv.ParseUint(str(vals[1]), 10, 64)
	return rev, gen, str(vals[2]), nil
}
