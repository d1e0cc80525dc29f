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
	out[pair{n.groupName(g.Name), g.ID}] = struct{}{}
	for _, c := range g.Nested {
		out[pair{n.parents(c), g.ID}] = struct{}{}
	}
	for _, r := range g.Roles {
		out[pair{n.groupRoles(g.ID), r}] = struct{}{}
		out[pair{n.roleGroups(r), g.ID}] = struct{}{}
	}
	for _, m := range g.Mappings {
		out[pair{n.mapping(m.ConnectionName, m.GroupName), g.ID}] = struct{}{}
	}
	for _, u := range g.Members {
		out[pair{n.userGroups(u), g.ID}] = struct{}{}
	}
}

func rolePairs(n ns, r *authz.Role, out map[pair]struct{}) {
	out[pair{n.roleName(r.ApplicationID, r.Name), r.ID}] = struct{}{}
	for _, p := range r.Permissions {
		out[pair{n.rolePerms(r.ID), p}] = struct{}{}
		out[pair{n.permRoles(p), r.ID}] = struct{}{}
	}
	for _, u := range r.Users {
		out[pair{n.userRoles(u), r.ID}] = struct{}{}
	}
}

func permPairs(n ns, p *authz.Permission, out map[pair]struct{}) {
	out[pair{n.permName(p.ApplicationID, p.Name), p.ID}] = struct{}{}
}

// cmdable is what writes need: a pipeline, a transaction pipeline or a
// client.
type cmdable interface {
	goredis.Cmdable
}

// writeGroup writes a group's record and login metadata at seq.
func writeGroup(ctx context.Context, p cmdable, n ns, g *authz.Group, seq float64) error {
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("group %q: encode: %w", g.ID, err)
	}
	p.Set(ctx, n.group(g.ID), b, 0)
	p.ZAdd(ctx, n.groups(), goredis.Z{Score: seq, Member: g.ID})
	p.HSet(ctx, n.groupMeta(g.ID), "s", fmtSeq(seq), "n", g.Name)
	return nil
}

func writeRole(ctx context.Context, p cmdable, n ns, r *authz.Role, seq float64) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("role %q: encode: %w", r.ID, err)
	}
	p.Set(ctx, n.role(r.ID), b, 0)
	p.ZAdd(ctx, n.roles(), goredis.Z{Score: seq, Member: r.ID})
	p.HSet(ctx, n.roleMeta(r.ID), "s", fmtSeq(seq), "n", r.Name, "t", r.ApplicationType, "a", r.ApplicationID)
	return nil
}

func writePerm(ctx context.Context, p cmdable, n ns, pm *authz.Permission, seq float64) error {
	b, err := json.Marshal(pm)
	if err != nil {
		return fmt.Errorf("permission %q: encode: %w", pm.ID, err)
	}
	p.Set(ctx, n.perm(pm.ID), b, 0)
	p.ZAdd(ctx, n.perms(), goredis.Z{Score: seq, Member: pm.ID})
	p.HSet(ctx, n.permMeta(pm.ID), "s", fmtSeq(seq), "n", pm.Name)
	return nil
}

func writeApp(ctx context.Context, p cmdable, n ns, a *authz.Application, seq float64) error {
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
	doc := &authz.Document{}
	if b, err := conf.Bytes(); err == nil {
		if err := decodeRecord(b, &doc.Configuration, "configuration", ""); err != nil {
			return nil, err
		}
	}
	if err := s.loadRecords(ctx, gids.Val(), n.group, "group", func(b []byte, id string) error {
		var g authz.Group
		if err := decodeRecord(b, &g, "group", id); err != nil {
			return err
		}
		doc.Groups = append(doc.Groups, g)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.loadRecords(ctx, rids.Val(), n.role, "role", func(b []byte, id string) error {
		var r authz.Role
		if err := decodeRecord(b, &r, "role", id); err != nil {
			return err
		}
		doc.Roles = append(doc.Roles, r)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.loadRecords(ctx, pids.Val(), n.perm, "permission", func(b []byte, id string) error {
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

func (s *Store) loadRecords(ctx context.Context, ids []string, key func(string) string, entity string, fn func([]byte, string) error) error {
	const chunk = 2000
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		keys := make([]string, len(part))
		for i, id := range part {
			keys[i] = key(id)
		}
		vals, err := s.c.MGet(ctx, keys...).Result()
		if err != nil {
			return unavailable("read "+entity+"s", err)
		}
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				// Listed in the order index without a record: a write in
				// progress elsewhere; the caller's revision check retries.
				return errMoved
			}
			if err := fn([]byte(str), part[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// errMoved means the store changed while a multi-step read ran.
var errMoved = errors.New("store changed during read")
