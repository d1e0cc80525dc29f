package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// decodeRecord reads a stored record. A record that does not decode is
// corrupt data, reported with its entity and id (ErrInvalid).
func decodeRecord(b []byte, v any, entity, id string) error {
	if err := json.Unmarshal(b, v); err != nil {
		return &runtime.ValidationError{Entity: entity, ID: id, Reason: "stored record is corrupt: " + err.Error()}
	}
	return nil
}

// pair is one member of one index set.
type pair struct{ key, member string }

// groupPairs lists the index-set memberships a group record implies.
func groupPairs(n ns, g *authz.Group, out map[pair]struct{}) {
	groupPairsExceptMembers(n, g, out)
	for _, u := range g.Members {
		out[pair{n.userGroups(u), g.ID}] = struct{}{}
	}
}

// groupPairsExceptMembers is groupPairs without the user → groups pairs.
func groupPairsExceptMembers(n ns, g *authz.Group, out map[pair]struct{}) {
	out[pair{n.groupName(g.Name), g.ID}] = struct{}{}
	for _, c := range g.Nested {
		out[pair{n.parents(c), g.ID}] = struct{}{}
	}
	for _, r := range g.Roles {
		out[pair{n.roleGroups(r), g.ID}] = struct{}{}
	}
}

func rolePairs(n ns, r *authz.Role, out map[pair]struct{}) {
	rolePairsExceptUsers(n, r, out)
	for _, u := range r.Users {
		out[pair{n.userRoles(u), r.ID}] = struct{}{}
	}
}

// rolePairsExceptUsers is rolePairs without the user → roles pairs.
func rolePairsExceptUsers(n ns, r *authz.Role, out map[pair]struct{}) {
	out[pair{n.roleName(r.ApplicationID, r.Name), r.ID}] = struct{}{}
	for _, p := range r.Permissions {
		out[pair{n.permRoles(p), r.ID}] = struct{}{}
	}
}

// memberPairs adds the user → entity pairs of users only one of the lists
// holds: was's to before, is's to after (pairs of users in both would
// cancel out).
func memberPairs(was, is []string, key func(string) string, id string, before, after map[pair]struct{}) {
	in := make(map[string]bool, len(was))
	for _, u := range was {
		in[u] = true
	}
	now := make(map[string]bool, len(is))
	for _, u := range is {
		now[u] = true
		if !in[u] {
			after[pair{key(u), id}] = struct{}{}
		}
	}
	for u := range in {
		if !now[u] {
			before[pair{key(u), id}] = struct{}{}
		}
	}
}

func permPairs(n ns, p *authz.Permission, out map[pair]struct{}) {
	out[pair{n.permName(p.ApplicationID, p.Name), p.ID}] = struct{}{}
}

// encodeGroup splits a group into its structural record and its member
// list (nil when there are none): logins and the structure snapshot never
// read the members of every group.
func encodeGroup(g *authz.Group) (rec, members []byte, err error) {
	c := *g
	c.Members = nil
	if rec, err = json.Marshal(c); err != nil {
		return nil, nil, fmt.Errorf("group %q: encode: %w", g.ID, err)
	}
	if len(g.Members) > 0 {
		if members, err = json.Marshal(g.Members); err != nil {
			return nil, nil, fmt.Errorf("group %q: encode members: %w", g.ID, err)
		}
	}
	return rec, members, nil
}

func encodeRole(r *authz.Role) (rec, users []byte, err error) {
	c := *r
	c.Users = nil
	if rec, err = json.Marshal(c); err != nil {
		return nil, nil, fmt.Errorf("role %q: encode: %w", r.ID, err)
	}
	if len(r.Users) > 0 {
		if users, err = json.Marshal(r.Users); err != nil {
			return nil, nil, fmt.Errorf("role %q: encode users: %w", r.ID, err)
		}
	}
	return rec, users, nil
}

// setOrDel writes v at key, or deletes key when v is nil.
func setOrDel(ctx context.Context, p goredis.Cmdable, key string, v []byte) {
	if v == nil {
		p.Del(ctx, key)
		return
	}
	p.Set(ctx, key, v, 0)
}

func writeApp(ctx context.Context, p goredis.Cmdable, n ns, a *authz.Application, seq float64) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("application %q: encode: %w", a.ClientID, err)
	}
	p.HSet(ctx, n.apps(), a.ClientID, b)
	p.ZAdd(ctx, n.appOrder(), goredis.Z{Score: seq, Member: a.ClientID})
	return nil
}

func fmtSeq(seq float64) string { return strconv.FormatFloat(seq, 'f', -1, 64) }

// loadDocument reads a whole generation: every record, in storage order.
// Reads are pipelined in batches; the caller checks the revision did not
// move meanwhile.
func (s *Store) loadDocument(ctx context.Context, n ns) (*authz.Document, error) {
	pipe := s.c.Pipeline()
	gids := pipe.ZRange(ctx, n.groups(), 0, -1)
	rids := pipe.ZRange(ctx, n.roles(), 0, -1)
	pids := pipe.ZRange(ctx, n.perms(), 0, -1)
	aids := pipe.ZRange(ctx, n.appOrder(), 0, -1)
	apps := pipe.HGetAll(ctx, n.apps())
	conf := pipe.Get(ctx, n.conf())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, unavailable("read document", err)
	}
	var err error
	doc := &authz.Document{}
	if b, err := conf.Bytes(); err == nil {
		if err := decodeRecord(b, &doc.Configuration, "configuration", ""); err != nil {
			return nil, err
		}
	}
	doc.Groups, err = s.loadGroups(ctx, n, gids.Val(), true)
	if err != nil {
		return nil, err
	}
	doc.Roles, err = s.loadRoles(ctx, n, rids.Val(), true)
	if err != nil {
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
	if ids := aids.Val(); len(ids) > 0 {
		all := apps.Val()
		sec := &authz.Section{}
		for _, id := range ids {
			raw, ok := all[id]
			if !ok {
				continue
			}
			var a authz.Application
			if err := decodeRecord([]byte(raw), &a, "application", id); err != nil {
				return nil, err
			}
			sec.Applications = append(sec.Applications, a)
		}
		doc.Claimsmith = sec
	}
	return doc, nil
}

// loadGroups reads group records in the given order, with their members
// when withMembers.
func (s *Store) loadGroups(ctx context.Context, n ns, ids []string, withMembers bool) ([]authz.Group, error) {
	out := make([]authz.Group, 0, len(ids))
	var extra func(string) string
	if withMembers {
		extra = n.members
	}
	err := s.loadRecords(ctx, ids, n.group, extra, "group", func(b, mem []byte, id string) error {
		var g authz.Group
		if err := decodeRecord(b, &g, "group", id); err != nil {
			return err
		}
		if mem != nil {
			if err := decodeRecord(mem, &g.Members, "group", id); err != nil {
				return err
			}
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

func (s *Store) loadRoles(ctx context.Context, n ns, ids []string, withUsers bool) ([]authz.Role, error) {
	out := make([]authz.Role, 0, len(ids))
	var extra func(string) string
	if withUsers {
		extra = n.roleUsers
	}
	err := s.loadRecords(ctx, ids, n.role, extra, "role", func(b, users []byte, id string) error {
		var r authz.Role
		if err := decodeRecord(b, &r, "role", id); err != nil {
			return err
		}
		if users != nil {
			if err := decodeRecord(users, &r.Users, "role", id); err != nil {
				return err
			}
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// loadRecords reads records (and, when extraKey is set, a companion value
// each, which may be absent) in batches of pipelined MGETs.
func (s *Store) loadRecords(ctx context.Context, ids []string, key, extraKey func(string) string, entity string, fn func(rec, extra []byte, id string) error) error {
	const chunk = 2000
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		keys := make([]string, len(part))
		for i, id := range part {
			keys[i] = key(id)
		}
		pipe := s.c.Pipeline()
		recs := pipe.MGet(ctx, keys...)
		var extras *goredis.SliceCmd
		if extraKey != nil {
			ek := make([]string, len(part))
			for i, id := range part {
				ek[i] = extraKey(id)
			}
			extras = pipe.MGet(ctx, ek...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return unavailable("read "+entity+"s", err)
		}
		for i, v := range recs.Val() {
			str, ok := v.(string)
			if !ok {
				// Listed in the order index without a record: a write in
				// progress elsewhere; the caller's revision check retries.
				return errMoved
			}
			var extra []byte
			if extras != nil {
				if e, ok := extras.Val()[i].(string); ok {
					extra = []byte(e)
				}
			}
			if err := fn([]byte(str), extra, part[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// errMoved means the store changed while a multi-step read ran.
var errMoved = errors.New("store changed during read")
