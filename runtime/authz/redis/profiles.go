package redis

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Profile implements runtime.ProfileStore: one GET.
func (s *Store) Profile(ctx context.Context, userID string) (runtime.Profile, error) {
	b, err := s.c.Get(ctx, s.k.profile(userID)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID}), nil
	}
	if err != nil {
		return runtime.Profile{}, unavailable("read profile", err)
	}
	return decodeProfile(b, userID)
}

func decodeProfile(b []byte, userID string) (runtime.Profile, error) {
	var p runtime.Profile
	if err := decodeRecord(b, &p, "profile", userID); err != nil {
		return runtime.Profile{}, err
	}
	return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID, AppMetadata: p.AppMetadata, UserMetadata: p.UserMetadata}), nil
}

// PatchProfile implements runtime.ProfileStore: read, merge, write back in
// MULTI/EXEC guarded by WATCH on the profile's key, retried on a concurrent
// patch, so no patch is lost. Profiles are not part of the policy: the
// revision does not move.
func (s *Store) PatchProfile(ctx context.Context, userID string, appMetadata, userMetadata map[string]any) (runtime.Profile, error) {
	key := s.k.profile(userID)
	for attempt := 0; ; attempt++ {
		var out runtime.Profile
		var fnErr error
		err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
			fnErr = s.patchTx(ctx, tx, key, userID, appMetadata, userMetadata, &out)
			return fnErr
		}, key)
		if err == nil {
			return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID, AppMetadata: out.AppMetadata, UserMetadata: out.UserMetadata}), nil
		}
		if !errors.Is(err, goredis.TxFailedErr) {
			if fnErr == nil {
				return runtime.Profile{}, unavailable("patch profile", err)
			}
			return runtime.Profile{}, err
		}
		if err := backoff(ctx, attempt); err != nil {
			return runtime.Profile{}, unavailable("patch profile (retrying after concurrent patches)", err)
		}
	}
}

func (s *Store) patchTx(ctx context.Context, tx *goredis.Tx, key, userID string, appMetadata, userMetadata map[string]any, out *runtime.Profile) error {
	cur := runtime.Profile{UserID: userID}
	b, err := tx.Get(ctx, key).Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
	case err != nil:
		return unavailable("read profile", err)
	default:
		if cur, err = decodeProfile(b, userID); err != nil {
			return err
		}
	}
	next, err := authz.MergeProfile(cur, userID, appMetadata, userMetadata, s.opt.ProfileLimit)
	if err != nil {
		return err
	}
	enc, err := json.Marshal(next)
	if err != nil {
		return &runtime.ValidationError{Entity: "profile", ID: userID, Reason: "is not JSON: " + err.Error()}
	}
	_, err = tx.TxPipelined(ctx, func(tp goredis.Pipeliner) error {
		tp.Set(ctx, key, enc, 0)
		tp.SAdd(ctx, s.k.profiles(), userID)
		return nil
	})
	if err != nil {
		if errors.Is(err, goredis.TxFailedErr) {
			return err
		}
		return unavailable("patch profile", err)
	}
	*out = next
	return nil
}

// ListProfiles implements authz.ProfileLister.
func (s *Store) ListProfiles(ctx context.Context, fn func(runtime.Profile) error) error {
	var cursor uint64
	seen := map[string]bool{} // SSCAN may return a member twice
	for {
		ids, next, err := s.c.SScan(ctx, s.k.profiles(), cursor, "", 500).Result()
		if err != nil {
			return unavailable("list profiles", err)
		}
		ids = slices.DeleteFunc(ids, func(id string) bool {
			dup := seen[id]
			seen[id] = true
			return dup
		})
		if len(ids) > 0 {
			keys := make([]string, len(ids))
			for i, id := range ids {
				keys[i] = s.k.profile(id)
			}
			vals, err := s.c.MGet(ctx, keys...).Result()
			if err != nil {
				return unavailable("list profiles", err)
			}
			for i, v := range vals {
				str, ok := v.(string)
				if !ok {
					continue
				}
				p, err := decodeProfile([]byte(str), ids[i])
				if err != nil {
					return err
				}
				if err := fn(p); err != nil {
					return err
				}
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
