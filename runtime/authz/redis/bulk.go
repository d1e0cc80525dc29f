package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// applyBulk runs a batch holding a ReplaceDocument: the resulting document
// is computed in memory with the ops' own code, written to a fresh
// generation of keys with pipelined batches (readers still see the current
// one), and switched to in one MULTI/EXEC guarded by WATCH on the revision.
// A concurrent write makes the switch fail: the new generation is dropped
// and the batch retried (expected == 0) or refused with a ConflictError.
func (s *Store) applyBulk(ctx context.Context, expected uint64, progress func(done, total int), ops []authz.Op) (uint64, error) {
	for attempt := 0; ; attempt++ {
		rev, gen, err := s.revGen(ctx)
		if err != nil {
			return 0, err
		}
		if expected != 0 && expected != rev {
			return 0, &runtime.ConflictError{Expected: expected, Actual: rev}
		}
		var doc *authz.Document
		if _, first := ops[0].(*authz.ReplaceDocument); first {
			// Only the applications survive an import without a
			// claimsmith section; nothing else of the old model is read.
			doc, err = s.loadApps(ctx, s.k.ns(gen))
		} else {
			doc, err = s.loadDocument(ctx, s.k.ns(gen))
		}
		if errors.Is(err, errMoved) {
			continue
		}
		if err != nil {
			return 0, err
		}
		for i, op := range ops {
			if err := op.Apply(doc); err != nil {
				return 0, authz.OpError(i, len(ops), err)
			}
		}
		recs, replaceProfiles := authz.ImportedProfiles(ops)
		profiles := make(map[string][]byte, len(recs))
		if replaceProfiles {
			for _, r := range recs {
				p := authz.ProfileFromRecord(r)
				if err := authz.CheckProfile(p, s.opt.ProfileLimit); err != nil {
					return 0, err
				}
				b, err := json.Marshal(p)
				if err != nil {
					return 0, fmt.Errorf("profile %q: encode: %w", r.UserID, err)
				}
				profiles[p.UserID] = b
			}
		}

		newGen, err := s.c.Incr(ctx, s.k.genCounter()).Uint64()
		if err != nil {
			return 0, unavailable("import: new generation", err)
		}
		// Generation numbers must never collide with the current one, even
		// after the counter key was lost.
		if newGen <= gen {
			if newGen, err = s.c.IncrBy(ctx, s.k.genCounter(), int64(gen-newGen+1)).Uint64(); err != nil {
				return 0, unavailable("import: new generation", err)
			}
		}
		n := s.k.ns(newGen)
		if err := s.writeAll(ctx, n, doc, progress); err != nil {
			s.dropGeneration(newGen)
			return 0, err
		}
		var fnErr error
		mark := newMarker(markerImport)
		err = s.c.Watch(ctx, func(tx *goredis.Tx) error {
			fnErr = s.switchGeneration(ctx, tx, rev, newGen, mark, replaceProfiles, profiles)
			return fnErr
		}, s.k.rev(), s.k.profiles())
		if err == nil {
			s.adopt(mark)
			s.dropGeneration(gen)
			return rev + 1, nil
		}
		if !errors.Is(err, goredis.TxFailedErr) {
			// The outcome of EXEC may be unknown: drop the new generation
			// only when it is certainly not the live one.
			if live, gerr := s.generation(ctx, s.c); gerr == nil {
				if live == newGen {
					s.adopt(mark)
					s.dropGeneration(gen)
					return rev + 1, nil
				}
				s.dropGeneration(newGen)
			}
			if fnErr == nil {
				return 0, unavailable("import: switch generation", err)
			}
			return 0, err
		}
		s.dropGeneration(newGen)
		if expected != 0 {
			actual, rerr := s.Revision(ctx)
			if rerr != nil {
				return 0, rerr
			}
			return 0, &runtime.ConflictError{Expected: expected, Actual: actual}
		}
		if err := backoff(ctx, attempt); err != nil {
			return 0, unavailable("import (retrying after concurrent writes)", err)
		}
	}
}

// switchGeneration is the import's commit, run inside WATCH rev and profs.
// It writes the store's marker (see availability.go) with the data: an
// import is how an operator recovers a store whose Redis lost its data.
func (s *Store) switchGeneration(ctx context.Context, tx *goredis.Tx, rev, newGen uint64, mark string, replaceProfiles bool, profiles map[string][]byte) error {
	cur, err := tx.Get(ctx, s.k.rev()).Uint64()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return unavailable("import: read revision", err)
	}
	if cur != rev {
		return goredis.TxFailedErr
	}
	var old []string
	if replaceProfiles {
		if old, err = tx.SMembers(ctx, s.k.profiles()).Result(); err != nil {
			return unavailable("import: read profiles", err)
		}
	}
	_, err = tx.TxPipelined(ctx, func(tp goredis.Pipeliner) error {
		tp.Set(ctx, s.k.gen(), newGen, 0)
		tp.Set(ctx, s.k.marker(), mark, 0)
		tp.Set(ctx, s.k.srev(), newStructureVersion(), 0)
		tp.Incr(ctx, s.k.rev())
		if replaceProfiles {
			for _, u := range old {
				if _, keep := profiles[u]; !keep {
					tp.Del(ctx, s.k.profile(u))
				}
			}
			tp.Del(ctx, s.k.profiles())
			for u, b := range profiles {
				tp.Set(ctx, s.k.profile(u), b, 0)
				tp.SAdd(ctx, s.k.profiles(), u)
			}
		}
		return nil
	})
	if err != nil {
		return unavailable("import: commit", err)
	}
	return nil
}

// loadApps returns a document holding only the applications.
func (s *Store) loadApps(ctx context.Context, n ns) (*authz.Document, error) {
	pipe := s.c.Pipeline()
	ids := pipe.ZRange(ctx, n.appOrder(), 0, -1)
	all := pipe.HGetAll(ctx, n.apps())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("read applications", err)
	}
	doc := &authz.Document{}
	if len(ids.Val()) == 0 {
		return doc, nil
	}
	doc.Claimsmith = &authz.Section{}
	for _, id := range ids.Val() {
		raw, ok := all.Val()[id]
		if !ok {
			return nil, errMoved
		}
		var a authz.Application
		if err := decodeRecord([]byte(raw), &a, "application", id); err != nil {
			return nil, err
		}
		doc.Claimsmith.Applications = append(doc.Claimsmith.Applications, a)
	}
	return doc, nil
}

// writeAll writes a whole document into generation n with pipelined
// batches of BatchSize commands. Index sets are aggregated first, so a user
// in ten groups costs one SADD, not ten.
func (s *Store) writeAll(ctx context.Context, n ns, doc *authz.Document, progress func(done, total int)) error {
	sets := map[string][]any{}
	pairs := map[pair]struct{}{}
	flushPairs := func() {
		for p := range pairs {
			sets[p.key] = append(sets[p.key], p.member)
		}
		clear(pairs)
	}
	for i := range doc.Groups {
		groupPairs(n, &doc.Groups[i], pairs)
		flushPairs()
	}
	for i := range doc.Roles {
		rolePairs(n, &doc.Roles[i], pairs)
		flushPairs()
	}
	for i := range doc.Permissions {
		permPairs(n, &doc.Permissions[i], pairs)
		flushPairs()
	}
	apps := 0
	if doc.Claimsmith != nil {
		apps = len(doc.Claimsmith.Applications)
	}
	// Exactly the commands queued below, so progress ends at total.
	total := 2*(len(doc.Groups)+len(doc.Roles)+len(doc.Permissions)+apps) + len(sets) + 2
	for i := range doc.Groups {
		if len(doc.Groups[i].Members) > 0 {
			total++
		}
	}
	for i := range doc.Roles {
		if len(doc.Roles[i].Users) > 0 {
			total++
		}
	}
	done := 0
	batch := s.opt.BatchSize
	pipe := s.c.Pipeline()
	flush := func(force bool) error {
		if pipe.Len() == 0 || (!force && pipe.Len() < batch) {
			return nil
		}
		k := pipe.Len()
		cmds, err := pipe.Exec(ctx)
		if isTimeout(err) && ctx.Err() == nil {
			// Redis did not answer the whole batch within the client's
			// read timeout (a busy server or machine: go-redis retried
			// it already). Send it again in smaller batches, and keep
			// them smaller: every command here is idempotent (SET, ZADD,
			// SADD into a generation no reader sees yet), so commands
			// Redis ran already may run again.
			batch = max(batch/8, minImportBatch)
			err = s.resend(ctx, cmds, batch)
		}
		if err != nil {
			return unavailable("import: write batch", err)
		}
		done += k
		if progress != nil {
			progress(min(done, total), total)
		}
		return nil
	}
	seq := 0.0
	for i := range doc.Groups {
		g := &doc.Groups[i]
		seq++
		rec, mem, err := encodeGroup(g)
		if err != nil {
			return err
		}
		pipe.Set(ctx, n.group(g.ID), rec, 0)
		pipe.ZAdd(ctx, n.groups(), goredis.Z{Score: seq, Member: g.ID})
		if mem != nil {
			pipe.Set(ctx, n.members(g.ID), mem, 0)
		}
		if err := flush(false); err != nil {
			return err
		}
	}
	for i := range doc.Roles {
		r := &doc.Roles[i]
		seq++
		rec, users, err := encodeRole(r)
		if err != nil {
			return err
		}
		pipe.Set(ctx, n.role(r.ID), rec, 0)
		pipe.ZAdd(ctx, n.roles(), goredis.Z{Score: seq, Member: r.ID})
		if users != nil {
			pipe.Set(ctx, n.roleUsers(r.ID), users, 0)
		}
		if err := flush(false); err != nil {
			return err
		}
	}
	for i := range doc.Permissions {
		pm := &doc.Permissions[i]
		seq++
		b, err := json.Marshal(pm)
		if err != nil {
			return fmt.Errorf("permission %q: encode: %w", pm.ID, err)
		}
		pipe.Set(ctx, n.perm(pm.ID), b, 0)
		pipe.ZAdd(ctx, n.perms(), goredis.Z{Score: seq, Member: pm.ID})
		if err := flush(false); err != nil {
			return err
		}
	}
	for i := 0; i < apps; i++ {
		seq++
		if err := writeApp(ctx, pipe, n, &doc.Claimsmith.Applications[i], seq); err != nil {
			return err
		}
	}
	for k, members := range sets {
		pipe.SAdd(ctx, k, members...)
		if err := flush(false); err != nil {
			return err
		}
	}
	conf, err := json.Marshal(doc.Configuration)
	if err != nil {
		return fmt.Errorf("configuration: encode: %w", err)
	}
	if doc.Configuration == nil {
		conf = []byte("[]")
	}
	pipe.Set(ctx, n.conf(), conf, 0)
	pipe.Set(ctx, n.seq(), fmtSeq(seq), 0)
	return flush(true)
}

// minImportBatch is the smallest batch resend splits a timed-out one into.
const minImportBatch = 16

// resend runs cmds again in pipelines of at most size commands, splitting
// a pipeline that times out again, down to minImportBatch.
func (s *Store) resend(ctx context.Context, cmds []goredis.Cmder, size int) error {
	for len(cmds) > 0 {
		part := cmds[:min(size, len(cmds))]
		pipe := s.c.Pipeline()
		for _, c := range part {
			_ = pipe.Process(ctx, goredis.NewCmd(ctx, c.Args()...))
		}
		_, err := pipe.Exec(ctx)
		if isTimeout(err) && ctx.Err() == nil && size > minImportBatch {
			err = s.resend(ctx, part, max(size/8, minImportBatch))
		}
		if err != nil {
			return err
		}
		cmds = cmds[len(part):]
	}
	return nil
}

// isTimeout reports a network timeout (not the caller's context's).
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
		errors.As(err, &ne) && ne.Timeout()
}

// dropGeneration deletes a generation's keys in the background (an old one
// after a switch, or a new one that lost the race). Readers never see it:
// the generation key no longer names it.
func (s *Store) dropGeneration(gen uint64) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := s.deleteGeneration(ctx, gen); err != nil {
			s.log.Warn("redis store: delete old generation", "generation", gen, "err", err)
		}
	}()
}

func (s *Store) deleteGeneration(ctx context.Context, gen uint64) error {
	// SCAN must run on the node holding the store's slot.
	var sc interface {
		Scan(ctx context.Context, cursor uint64, match string, count int64) *goredis.ScanCmd
	} = s.c
	var node *goredis.Client
	if cc, ok := s.c.(*goredis.ClusterClient); ok {
		var err error
		if node, err = cc.MasterForKey(ctx, s.k.rev()); err != nil {
			return err
		}
		sc = node
	}
	match := escapeGlob(string(s.k.ns(gen))) + "*"
	var cursor uint64
	for {
		keys, next, err := sc.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := s.c.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// escapeGlob quotes the glob metacharacters of a key prefix (the hash tag's
// braces are not special, but a prefix may contain * ? [ ] \).
func escapeGlob(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
