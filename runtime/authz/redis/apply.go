package redis

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Apply implements authz.Writer. A batch with a ReplaceDocument (an import)
// takes the bulk path; every other batch runs as one optimistic transaction.
func (s *Store) Apply(ctx context.Context, expected uint64, ops ...authz.Op) (uint64, error) {
	return s.apply(ctx, expected, nil, ops)
}

// Import replaces the model with doc (and, when doc carries a claimsmith
// section with profiles, the profiles), writing with pipelined batches and
// calling progress(done, total) as commands are acknowledged. It is Apply with
// one ReplaceDocument, for `claimsmith import` and bulk loaders.
func (s *Store) Import(ctx context.Context, expected uint64, doc *authz.Document, progress func(done, total int)) (uint64, error) {
	return s.apply(ctx, expected, progress, []authz.Op{&authz.ReplaceDocument{Doc: doc}})
}

func (s *Store) apply(ctx context.Context, expected uint64, progress func(done, total int), ops []authz.Op) (uint64, error) {
	for _, op := range ops {
		if _, ok := op.(*authz.ReplaceDocument); ok {
			return s.applyBulk(ctx, expected, progress, ops)
		}
	}
	ch, err := s.commit(ctx, expected, authz.Footprint{}, ops)
	return ch.Revision, err
}

// Commit implements authz.Committer: Apply that also returns the records
// of the batch's footprint (and of reads) as the transaction read and left
// them.
func (s *Store) Commit(ctx context.Context, expected uint64, reads authz.Footprint, ops ...authz.Op) (authz.Change, error) {
	fp := authz.FootprintOf(ops...)
	if fp.All || reads.All {
		return authz.Change{}, &runtime.ValidationError{Entity: "op", Field: "footprint",
			Reason: "covers the whole model: use Apply (an import is not a record change)"}
	}
	return s.commit(ctx, expected, reads, ops)
}

// commit runs the batch as one optimistic transaction, again after a lost
// race when expected is 0.
func (s *Store) commit(ctx context.Context, expected uint64, reads authz.Footprint, ops []authz.Op) (authz.Change, error) {
	for attempt := 0; ; attempt++ {
		var ch authz.Change
		var fnErr error
		err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
			ch, fnErr = s.applyTx(ctx, tx, expected, reads, ops)
			return fnErr
		}, s.k.rev())
		if err == nil {
			return ch, nil
		}
		if !errors.Is(err, goredis.TxFailedErr) {
			if fnErr == nil {
				// WATCH itself failed: the connection, not the batch.
				return authz.Change{}, unavailable("apply", err)
			}
			return authz.Change{}, err
		}
		// Another writer committed between our WATCH and EXEC.
		if expected != 0 {
			actual, rerr := s.Revision(ctx)
			if rerr != nil {
				return authz.Change{}, rerr
			}
			return authz.Change{}, &runtime.ConflictError{Expected: expected, Actual: actual}
		}
		if err := backoff(ctx, attempt); err != nil {
			return authz.Change{}, unavailable("apply (retrying after concurrent writes)", err)
		}
	}
}

// backoff sleeps a little, growing and jittered, so that contending writers
// spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(100+rand.IntN(400)) * time.Microsecond << min(attempt, 6)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// partial is the part of the model a batch can observe: the records of the
// ops' footprints (authz.Footprint), found by id and through the index sets.
// Ops scan the whole document they get, so running them on this subset gives
// the same result as on the full model.
type partial struct {
	n ns

	groups map[string]*authz.Group // original records; nil: does not exist
	roles  map[string]*authz.Role
	perms  map[string]*authz.Permission
	seq    map[string]float64 // "g"/"r"/"p"/"a" + id → storage order
	// seqBase is the storage-order counter when the batch started.
	seqBase float64
	// rev is the revision read with the records.
	rev uint64

	// raw holds the stored bytes of each read group and role ("g"/"r" + id):
	// the record and its member or user list, to compare the new encoding
	// with instead of encoding the original again.
	raw map[string][2][]byte

	appsLoaded bool
	apps       []authz.Application
	confLoaded bool
	confRaw    []byte
	conf       []authz.Configuration
}

// wants lists the records and index sets a footprint reads.
type wants struct {
	groups, roles, perms []string
	groupSets            []string // sets whose members are group ids
	roleSets, permSets   []string
	apps, conf           bool
}

// wantsOf maps a footprint onto this store's keys: ids onto records, reverse
// relations onto the index sets that answer them.
func wantsOf(n ns, fp authz.Footprint) wants {
	w := wants{
		groups: slices.Clone(fp.Groups), roles: slices.Clone(fp.Roles), perms: slices.Clone(fp.Permissions),
		apps: fp.Applications, conf: fp.Configuration,
	}
	for _, name := range fp.GroupNames {
		w.groupSets = append(w.groupSets, n.groupName(name))
	}
	for _, id := range fp.ParentsOf {
		w.groupSets = append(w.groupSets, n.parents(id))
	}
	for _, u := range fp.MemberOf {
		w.groupSets = append(w.groupSets, n.userGroups(u))
	}
	for _, id := range fp.GroupsWithRoles {
		w.groupSets = append(w.groupSets, n.roleGroups(id))
	}
	for _, an := range fp.RoleNames {
		w.roleSets = append(w.roleSets, n.roleName(an.ApplicationID, an.Name))
	}
	for _, u := range fp.RolesOfUsers {
		w.roleSets = append(w.roleSets, n.userRoles(u))
	}
	for _, id := range fp.RolesWithPermissions {
		w.roleSets = append(w.roleSets, n.permRoles(id))
	}
	for _, an := range fp.PermissionNames {
		w.permSets = append(w.permSets, n.permName(an.ApplicationID, an.Name))
	}
	return w
}

// Records implements authz.RecordReader: the footprint's records, read
// without a transaction and accepted when the revision did not move while
// they were read (every write bumps it in its MULTI/EXEC).
func (s *Store) Records(ctx context.Context, fp authz.Footprint) (*authz.Document, uint64, error) {
	if fp.All {
		m, err := s.Snapshot(ctx)
		if err != nil {
			return nil, 0, err
		}
		return m.Document(), m.Revision(), nil
	}
	for attempt := 0; ; attempt++ {
		rev, gen, err := s.revGen(ctx)
		if err != nil {
			return nil, 0, err
		}
		n := s.k.ns(gen)
		w := wantsOf(n, fp)
		p, err := s.prefetch(ctx, s.c, n, &w)
		if err == nil && p.rev == rev {
			return p.document(), rev, nil
		}
		if err != nil {
			// An error while the revision held still is the store's, not
			// a race with a write (a write may delete what we read).
			if after, _, rerr := s.revGen(ctx); rerr != nil || after == rev {
				return nil, 0, err
			}
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, 0, unavailable("read records", err)
		}
	}
}

// applyTx runs one attempt inside WATCH rev.
func (s *Store) applyTx(ctx context.Context, tx *goredis.Tx, expected uint64, reads authz.Footprint, ops []authz.Op) (authz.Change, error) {
	pipe := tx.Pipeline()
	revCmd := pipe.Get(ctx, s.k.rev())
	genCmd := pipe.Get(ctx, s.k.gen())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return authz.Change{}, unavailable("apply: read revision", err)
	}
	rev, _ := revCmd.Uint64()
	gen, _ := genCmd.Uint64()
	if expected != 0 && expected != rev {
		return authz.Change{}, &runtime.ConflictError{Expected: expected, Actual: rev}
	}
	if len(ops) == 0 {
		return authz.Change{Previous: rev, Revision: rev, Before: &authz.Document{}, After: &authz.Document{}}, nil
	}
	n := s.k.ns(gen)
	fp := authz.FootprintOf(ops...)
	fp.Add(reads)
	w := wantsOf(n, fp)
	p, err := s.prefetch(ctx, tx, n, &w)
	if err != nil {
		return authz.Change{}, err
	}
	before := p.document()
	// Ops replace entities and assign new slices, never write into the
	// nested ones (authz.Op), so before stays as read.
	doc := before.CopyForWrite()
	for i, op := range ops {
		if err := op.Apply(doc); err != nil {
			return authz.Change{}, authz.OpError(i, len(ops), err)
		}
	}
	_, err = tx.TxPipelined(ctx, func(tp goredis.Pipeliner) error {
		if err := p.writeDiff(ctx, tp, doc, n.seq(), s.k.srev()); err != nil {
			return err
		}
		tp.Incr(ctx, s.k.rev())
		return nil
	})
	if err != nil {
		if errors.Is(err, goredis.TxFailedErr) {
			return authz.Change{}, err
		}
		var ve *runtime.ValidationError
		if errors.As(err, &ve) {
			return authz.Change{}, err
		}
		return authz.Change{}, unavailable("apply: commit", err)
	}
	return authz.Change{Previous: rev, Revision: rev + 1, Before: before, After: doc}, nil
}

// pipeliner is a client or a WATCH transaction.
type pipeliner interface {
	Pipeline() goredis.Pipeliner
}

// prefetch reads, in two pipelined round trips, the index sets and then the
// records the batch may observe; the second also reads the revision (p.rev).
func (s *Store) prefetch(ctx context.Context, tx pipeliner, n ns, w *wants) (*partial, error) {
	p := &partial{n: n, groups: map[string]*authz.Group{}, roles: map[string]*authz.Role{},
		perms: map[string]*authz.Permission{}, seq: map[string]float64{}, raw: map[string][2][]byte{}}
	if len(w.groupSets)+len(w.roleSets)+len(w.permSets) > 0 {
		pipe := tx.Pipeline()
		var gs, rs, ps []*goredis.StringSliceCmd
		for _, k := range w.groupSets {
			gs = append(gs, pipe.SMembers(ctx, k))
		}
		for _, k := range w.roleSets {
			rs = append(rs, pipe.SMembers(ctx, k))
		}
		for _, k := range w.permSets {
			ps = append(ps, pipe.SMembers(ctx, k))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, unavailable("apply: read indexes", err)
		}
		for _, c := range gs {
			w.groups = append(w.groups, c.Val()...)
		}
		for _, c := range rs {
			w.roles = append(w.roles, c.Val()...)
		}
		for _, c := range ps {
			w.perms = append(w.perms, c.Val()...)
		}
	}
	type rec struct {
		kind, id string
		val      *goredis.StringCmd
		extra    *goredis.StringCmd // members or users
		seq      *goredis.FloatCmd
	}
	var recs []rec
	pipe := tx.Pipeline()
	seen := map[string]bool{}
	queue := func(kind string, ids []string, key, extra func(string) string, order string) {
		for _, id := range ids {
			if seen[kind+id] {
				continue
			}
			seen[kind+id] = true
			r := rec{kind: kind, id: id, val: pipe.Get(ctx, key(id)), seq: pipe.ZScore(ctx, order, id)}
			if extra != nil {
				r.extra = pipe.Get(ctx, extra(id))
			}
			recs = append(recs, r)
		}
	}
	queue("g", w.groups, n.group, n.members, n.groups())
	queue("r", w.roles, n.role, n.roleUsers, n.roles())
	queue("p", w.perms, n.perm, nil, n.perms())
	seqCmd := pipe.Get(ctx, n.seq())
	revCmd := pipe.Get(ctx, s.k.rev())
	var appIDs *goredis.ZSliceCmd
	var apps *goredis.MapStringStringCmd
	var conf *goredis.StringCmd
	if w.apps {
		appIDs = pipe.ZRangeWithScores(ctx, n.appOrder(), 0, -1)
		apps = pipe.HGetAll(ctx, n.apps())
	}
	if w.conf {
		conf = pipe.Get(ctx, n.conf())
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, unavailable("apply: read records", err)
	}
	p.seqBase, _ = seqCmd.Float64()
	p.rev, _ = revCmd.Uint64()
	for _, r := range recs {
		b, err := r.val.Bytes()
		if errors.Is(err, goredis.Nil) {
			switch r.kind {
			case "g":
				p.groups[r.id] = nil
			case "r":
				p.roles[r.id] = nil
			case "p":
				p.perms[r.id] = nil
			}
			continue
		}
		p.seq[r.kind+r.id] = r.seq.Val()
		var extra []byte
		if r.extra != nil {
			extra, _ = r.extra.Bytes()
		}
		if r.kind != "p" {
			p.raw[r.kind+r.id] = [2][]byte{b, extra}
		}
		switch r.kind {
		case "g":
			var g authz.Group
			if err := decodeRecord(b, &g, "group", r.id); err != nil {
				return nil, err
			}
			if extra != nil {
				if err := decodeRecord(extra, &g.Members, "group", r.id); err != nil {
					return nil, err
				}
			}
			p.groups[r.id] = &g
		case "r":
			var v authz.Role
			if err := decodeRecord(b, &v, "role", r.id); err != nil {
				return nil, err
			}
			if extra != nil {
				if err := decodeRecord(extra, &v.Users, "role", r.id); err != nil {
					return nil, err
				}
			}
			p.roles[r.id] = &v
		case "p":
			var v authz.Permission
			if err := decodeRecord(b, &v, "permission", r.id); err != nil {
				return nil, err
			}
			p.perms[r.id] = &v
		}
	}
	if w.apps {
		p.appsLoaded = true
		all := apps.Val()
		for _, z := range appIDs.Val() {
			id, _ := z.Member.(string)
			raw, ok := all[id]
			if !ok {
				continue
			}
			var a authz.Application
			if err := decodeRecord([]byte(raw), &a, "application", id); err != nil {
				return nil, err
			}
			p.apps = append(p.apps, a)
			p.seq["a"+id] = z.Score
		}
	}
	if w.conf {
		p.confLoaded = true
		if b, err := conf.Bytes(); err == nil {
			p.confRaw = b
			if err := decodeRecord(b, &p.conf, "configuration", ""); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// document builds the partial document in storage order.
func (p *partial) document() *authz.Document {
	doc := &authz.Document{}
	for _, g := range sortedBySeq(p.groups, p.seq, "g") {
		doc.Groups = append(doc.Groups, *g)
	}
	for _, r := range sortedBySeq(p.roles, p.seq, "r") {
		doc.Roles = append(doc.Roles, *r)
	}
	for _, pm := range sortedBySeq(p.perms, p.seq, "p") {
		doc.Permissions = append(doc.Permissions, *pm)
	}
	if p.confLoaded {
		doc.Configuration = slices.Clone(p.conf)
	}
	if p.appsLoaded {
		doc.Claimsmith = &authz.Section{Applications: slices.Clone(p.apps)}
	}
	return doc
}

func sortedBySeq[T any](m map[string]*T, seq map[string]float64, kind string) []*T {
	ids := make([]string, 0, len(m))
	for id, v := range m {
		if v != nil {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		sa, sb := seq[kind+a], seq[kind+b]
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	out := make([]*T, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out
}

// seqAssigner hands out storage-order numbers for new records; the last
// one is written back to the counter.
type seqAssigner struct {
	next float64
	used bool
}

func (a *seqAssigner) take() float64 {
	a.used = true
	a.next++
	return a.next
}

// order numbers the records of one entity list in the final document's
// order: a record keeps its old number while the records keep their
// relative order; a created record and everything after one get new numbers
// (an id deleted and created again in one batch moves to the end, as in the
// document stores). Start each list with a fresh order.
type order struct {
	seqs  *seqAssigner
	prev  float64
	fresh bool
}

// next returns the number of the next record, whose old number is old when
// had is true.
func (o *order) next(old float64, had bool) float64 {
	seq := old
	if !had || o.fresh || old <= o.prev {
		seq, o.fresh = o.seqs.take(), true
	}
	o.prev = seq
	return seq
}

// writeDiff queues the writes that turn the original records into doc's:
// changed records, storage order, login metadata and index-set differences.
func (p *partial) writeDiff(ctx context.Context, tp goredis.Pipeliner, doc *authz.Document, seqKey, srevKey string) error {
	n := p.n
	before, after := map[pair]struct{}{}, map[pair]struct{}{}
	// New records get numbers above the counter read in prefetch; the
	// revision WATCH guarantees nobody else took them meanwhile.
	seqs := &seqAssigner{next: p.seqBase}

	// structural is set when resolution input other than memberships
	// changes: nodes then reload their structure snapshot.
	structural := false
	final := map[string]bool{}
	ord := &order{seqs: seqs}
	for i := range doc.Groups {
		g := &doc.Groups[i]
		final[g.ID] = true
		orig := p.groups[g.ID]
		old, had := p.seq["g"+g.ID]
		had = had && orig != nil
		seq := ord.next(old, had)
		rec, mem, err := encodeGroup(g)
		if err != nil {
			return err
		}
		var oRec, oMem []byte
		if orig != nil {
			// Index pairs of members both lists hold cancel out: only
			// the difference is listed, so a member write costs the
			// members it changes, not the group's size.
			groupPairsExceptMembers(n, orig, before)
			groupPairsExceptMembers(n, g, after)
			memberPairs(orig.Members, g.Members, n.userGroups, g.ID, before, after)
			raw := p.raw["g"+g.ID]
			oRec, oMem = raw[0], raw[1]
		} else {
			groupPairs(n, g, after)
		}
		if orig == nil || seq != old {
			tp.ZAdd(ctx, n.groups(), goredis.Z{Score: seq, Member: g.ID})
			structural = true
		}
		if orig == nil || !bytes.Equal(rec, oRec) {
			tp.Set(ctx, n.group(g.ID), rec, 0)
			structural = true
		}
		if !bytes.Equal(mem, oMem) {
			setOrDel(ctx, tp, n.members(g.ID), mem)
		}
	}
	for id, orig := range p.groups {
		if orig != nil && !final[id] {
			groupPairs(n, orig, before)
			tp.Del(ctx, n.group(id), n.members(id))
			tp.ZRem(ctx, n.groups(), id)
			structural = true
		}
	}

	clear(final)
	ord = &order{seqs: seqs}
	for i := range doc.Roles {
		r := &doc.Roles[i]
		final[r.ID] = true
		orig := p.roles[r.ID]
		old, had := p.seq["r"+r.ID]
		had = had && orig != nil
		seq := ord.next(old, had)
		rec, users, err := encodeRole(r)
		if err != nil {
			return err
		}
		var oRec, oUsers []byte
		if orig != nil {
			rolePairsExceptUsers(n, orig, before)
			rolePairsExceptUsers(n, r, after)
			memberPairs(orig.Users, r.Users, n.userRoles, r.ID, before, after)
			raw := p.raw["r"+r.ID]
			oRec, oUsers = raw[0], raw[1]
		} else {
			rolePairs(n, r, after)
		}
		if orig == nil || seq != old {
			tp.ZAdd(ctx, n.roles(), goredis.Z{Score: seq, Member: r.ID})
			structural = true
		}
		if orig == nil || !bytes.Equal(rec, oRec) {
			tp.Set(ctx, n.role(r.ID), rec, 0)
			structural = true
		}
		if !bytes.Equal(users, oUsers) {
			setOrDel(ctx, tp, n.roleUsers(r.ID), users)
		}
	}
	for id, orig := range p.roles {
		if orig != nil && !final[id] {
			rolePairs(n, orig, before)
			tp.Del(ctx, n.role(id), n.roleUsers(id))
			tp.ZRem(ctx, n.roles(), id)
			structural = true
		}
	}

	clear(final)
	ord = &order{seqs: seqs}
	for i := range doc.Permissions {
		pm := &doc.Permissions[i]
		final[pm.ID] = true
		orig := p.perms[pm.ID]
		old, had := p.seq["p"+pm.ID]
		had = had && orig != nil
		seq := ord.next(old, had)
		if orig != nil {
			permPairs(n, orig, before)
		}
		permPairs(n, pm, after)
		if orig == nil || seq != old {
			tp.ZAdd(ctx, n.perms(), goredis.Z{Score: seq, Member: pm.ID})
			structural = true
		}
		if orig == nil || !sameJSON(orig, pm) {
			b, err := json.Marshal(pm)
			if err != nil {
				return fmt.Errorf("permission %q: encode: %w", pm.ID, err)
			}
			tp.Set(ctx, n.perm(pm.ID), b, 0)
			structural = true
		}
	}
	for id, orig := range p.perms {
		if orig != nil && !final[id] {
			permPairs(n, orig, before)
			tp.Del(ctx, n.perm(id))
			tp.ZRem(ctx, n.perms(), id)
			structural = true
		}
	}
	if structural {
		tp.Set(ctx, srevKey, newStructureVersion(), 0)
	}

	if p.appsLoaded {
		origApps := map[string]*authz.Application{}
		for i := range p.apps {
			origApps[p.apps[i].ClientID] = &p.apps[i]
		}
		clear(final)
		ord = &order{seqs: seqs}
		var apps []authz.Application
		if doc.Claimsmith != nil {
			apps = doc.Claimsmith.Applications
		}
		for i := range apps {
			a := &apps[i]
			final[a.ClientID] = true
			orig := origApps[a.ClientID]
			old, had := p.seq["a"+a.ClientID]
			had = had && orig != nil
			seq := ord.next(old, had)
			if orig == nil || seq != old || !sameJSON(orig, a) {
				if err := writeApp(ctx, tp, n, a, seq); err != nil {
					return err
				}
			}
		}
		for id := range origApps {
			if !final[id] {
				tp.HDel(ctx, n.apps(), id)
				tp.ZRem(ctx, n.appOrder(), id)
			}
		}
	}

	if p.confLoaded {
		b, err := json.Marshal(doc.Configuration)
		if err != nil {
			return fmt.Errorf("configuration: encode: %w", err)
		}
		if string(b) != string(p.confRaw) {
			tp.Set(ctx, n.conf(), b, 0)
		}
	}

	// Index differences, grouped by set.
	rem, add := map[string][]any{}, map[string][]any{}
	for pr := range before {
		if _, ok := after[pr]; !ok {
			rem[pr.key] = append(rem[pr.key], pr.member)
		}
	}
	for pr := range after {
		if _, ok := before[pr]; !ok {
			add[pr.key] = append(add[pr.key], pr.member)
		}
	}
	for k, m := range rem {
		tp.SRem(ctx, k, m...)
	}
	for k, m := range add {
		tp.SAdd(ctx, k, m...)
	}
	if seqs.used {
		tp.Set(ctx, seqKey, fmtSeq(seqs.next), 0)
	}
	return nil
}

// newStructureVersion is a random token, not a counter, so that a node never
// mistakes a rebuilt store (Redis wiped and reloaded) for the structure it
// has cached.
func newStructureVersion() string { return crand.Text() }

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
