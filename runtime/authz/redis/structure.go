package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// structure is the model without memberships: groups (nesting, roles,
// mappings), roles (permissions) and permissions, indexed once — ancestor
// closures included — and shared by every login until the structure
// version changes. It is small next to the memberships (10,000 groups,
// 1,000 roles and 3,000 permissions take a few MiB) and its size does not
// grow with the number of users.
type structure struct {
	version string
	gen     uint64
	model   *authz.Model
}

// loadStructure reads the current structure, once for all concurrent
// callers. The read is detached from the first caller's cancellation (each
// caller still waits only as long as its own context allows), bounded by
// 30s, and repeated if a write moved the structure meanwhile.
func (s *Store) loadStructure(ctx context.Context) (*structure, error) {
	ch := s.sf.DoChan("structure", func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for attempt := 0; ; attempt++ {
			st, err := s.readStructure(lctx)
			if err == nil {
				s.structure.Store(st)
				return st, nil
			}
			if !errors.Is(err, errMoved) {
				return nil, err
			}
			if err := backoff(lctx, attempt); err != nil {
				return nil, unavailable("load structure", err)
			}
		}
	})
	select {
	case <-ctx.Done():
		return nil, unavailable("load structure", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*structure), nil
	}
}

func (s *Store) readStructure(ctx context.Context) (*structure, error) {
	version, gen, err := s.structureVersion(ctx)
	if err != nil {
		return nil, err
	}
	n := s.k.ns(gen)
	pipe := s.c.Pipeline()
	gids := pipe.ZRange(ctx, n.groups(), 0, -1)
	rids := pipe.ZRange(ctx, n.roles(), 0, -1)
	pids := pipe.ZRange(ctx, n.perms(), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("load structure", err)
	}
	doc := &authz.Document{}
	if doc.Groups, err = s.loadGroups(ctx, n, gids.Val(), false); err != nil {
		return nil, err
	}
	if doc.Roles, err = s.loadRoles(ctx, n, rids.Val(), false); err != nil {
		return nil, err
	}
	if err := s.loadRecords(ctx, pids.Val(), n.perm, nil, "permission", func(b, _ []byte, id string) error {
		var p authz.Permission
		if err := decodeRecord(b, &p, "permission", id); err != nil {
			return err
		}
		doc.Permissions = append(doc.Permissions, p)
		return nil
	}); err != nil {
		return nil, err
	}
	after, afterGen, err := s.structureVersion(ctx)
	if err != nil {
		return nil, err
	}
	if after != version || afterGen != gen {
		return nil, errMoved
	}
	return &structure{version: version, gen: gen, model: authz.NewModel(doc, 0)}, nil
}

func (s *Store) structureVersion(ctx context.Context) (string, uint64, error) {
	pipe := s.c.Pipeline()
	v := pipe.Get(ctx, s.k.srev())
	g := pipe.Get(ctx, s.k.gen())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return "", 0, unavailable("read structure version", err)
	}
	gen, _ := g.Uint64()
	return v.Val(), gen, nil
}
