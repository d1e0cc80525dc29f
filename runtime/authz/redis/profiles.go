package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Profile implements runtime.ProfileStore: one MGET of the profile and the
// store's marker. When Redis does not answer, the availability policy
// decides (profileUnavailable); a store that lost its data fails.
func (s *Store) Profile(ctx context.Context, userID string) (runtime.Profile, error) {
	b, err := s.readProfile(ctx, userID)
	if err != nil {
		return s.profileUnavailable(userID, err)
	}
	if b == nil {
		return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID}), nil
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

// casProfileLua replaces a profile only if it still holds what the patch
// was merged into (ARGV[1] "0": absent; else ARGV[2]), and indexes the user:
// check, write and index in one round trip.
const casProfileLua = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1`

// PatchProfile implements runtime.ProfileStore: one GET, merge, and — only
// when the result differs — one compare-and-set script, retried when a
// concurrent patch got there first, so no patch is lost. A patch that
// changes nothing (the common login re-persisting its authorization) costs
// the GET alone; a user with no profile whose patch leaves nothing to keep
// gets no key. Profiles are not part of the policy: the revision does not
// move.
func (s *Store) PatchProfile(ctx context.Context, userID string, appMetadata, userMetadata map[string]any) (runtime.Profile, error) {
	if userID == "" {
		return runtime.Profile{}, &runtime.ValidationError{Entity: "profile", Field: "user_id", Reason: "is required"}
	}
	key := s.k.profile(userID)
	for attempt := 0; ; attempt++ {
		cur := authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID})
		b, err := s.c.Get(ctx, key).Bytes()
		exists := true
		switch {
		case errors.Is(err, goredis.Nil):
			exists = false
		case err != nil:
			return runtime.Profile{}, unavailable("read profile", err)
		default:
			if cur, err = decodeProfile(b, userID); err != nil {
				return runtime.Profile{}, err
			}
		}
		if authz.PatchIsNoop(cur, appMetadata, userMetadata) {
			return cur, nil
		}
		next, err := authz.MergeProfile(cur, userID, appMetadata, userMetadata, s.opt.ProfileLimit)
		if err != nil {
			return runtime.Profile{}, err
		}
		if !exists && authz.NothingToKeep(next) {
			return next, nil
		}
		enc, err := json.Marshal(next)
		if err != nil {
			return runtime.Profile{}, &runtime.ValidationError{Entity: "profile", ID: userID, Reason: "is not JSON: " + err.Error()}
		}
		if exists && bytes.Equal(enc, b) {
			return next, nil
		}
		had := "1"
		if !exists {
			had = "0"
		}
		ok, err := s.casProfile.Run(ctx, s.c, []string{key, s.k.profiles()}, had, b, enc, userID).Int()
		if err != nil {
			return runtime.Profile{}, unavailable("patch profile", err)
		}
		if ok == 1 {
			return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID, AppMetadata: next.AppMetadata, UserMetadata: next.UserMetadata}), nil
		}
		if err := backoff(ctx, attempt); err != nil {
			return runtime.Profile{}, unavailable("patch profile (retrying after concurrent patches)", err)
		}
	}
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
