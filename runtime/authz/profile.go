package authz

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/claimsmith/claimsmith/runtime"
)

// ProfileLister enumerates every stored profile (export --full). Backends
// implement it next to runtime.ProfileStore; it is separate from Store so
// the login path never depends on it.
type ProfileLister interface {
	// ListProfiles calls fn for every stored profile, in no particular order.
	ListProfiles(ctx context.Context, fn func(runtime.Profile) error) error
}

// CollectProfiles lists every stored profile into one slice (never nil:
// a full export writes an empty list as []).
func CollectProfiles(ctx context.Context, pl ProfileLister) ([]runtime.Profile, error) {
	out := []runtime.Profile{}
	err := pl.ListProfiles(ctx, func(p runtime.Profile) error {
		out = append(out, p)
		return nil
	})
	return out, err
}

// ProfileTooLargeError is a profile object over its size cap. It matches
// runtime.ErrTooLarge.
type ProfileTooLargeError struct {
	UserID string
	Field  string // "app_metadata" or "user_metadata"
	Size   int
	Limit  int
}

func (e *ProfileTooLargeError) Error() string {
	return fmt.Sprintf("profile of user %q: %s would be %d bytes, limit is %d", e.UserID, e.Field, e.Size, e.Limit)
}

// Is reports runtime.ErrTooLarge.
func (e *ProfileTooLargeError) Is(target error) bool { return target == runtime.ErrTooLarge }

// MergeProfile applies merge patches to a copy of cur (RFC 7396: objects merge
// recursively, arrays and scalars replace, null deletes) and checks each
// object's encoded size against limit (0 means DefaultProfileLimit). cur is
// not changed. Backends share it so every backend merges identically.
func MergeProfile(cur runtime.Profile, userID string, appPatch, userPatch map[string]any, limit int) (runtime.Profile, error) {
	if userID == "" {
		return runtime.Profile{}, &runtime.ValidationError{Entity: "profile", Field: "user_id", Reason: "is required"}
	}
	if limit <= 0 {
		limit = DefaultProfileLimit
	}
	next := runtime.Profile{
		UserID:       userID,
		AppMetadata:  runtime.MergePatch(runtime.CloneMap(cur.AppMetadata), runtime.CloneMap(appPatch)),
		UserMetadata: runtime.MergePatch(runtime.CloneMap(cur.UserMetadata), runtime.CloneMap(userPatch)),
	}
	if next.AppMetadata == nil {
		next.AppMetadata = map[string]any{}
	}
	if next.UserMetadata == nil {
		next.UserMetadata = map[string]any{}
	}
	if err := CheckProfile(next, limit); err != nil {
		return runtime.Profile{}, err
	}
	return next, nil
}

// CheckProfile verifies both objects encode to JSON within limit bytes.
func CheckProfile(p runtime.Profile, limit int) error {
	if limit <= 0 {
		limit = DefaultProfileLimit
	}
	for _, f := range []struct {
		name string
		v    map[string]any
	}{{"app_metadata", p.AppMetadata}, {"user_metadata", p.UserMetadata}} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return &runtime.ValidationError{Entity: "profile", ID: p.UserID, Field: f.name, Reason: "is not JSON: " + err.Error()}
		}
		if len(b) > limit {
			return &ProfileTooLargeError{UserID: p.UserID, Field: f.name, Size: len(b), Limit: limit}
		}
	}
	return nil
}

// ProfileFromRecord converts an imported profile, filling empty objects.
func ProfileFromRecord(r ProfileRecord) runtime.Profile {
	p := runtime.Profile{UserID: r.UserID, AppMetadata: runtime.CloneMap(r.AppMetadata), UserMetadata: runtime.CloneMap(r.UserMetadata)}
	if p.AppMetadata == nil {
		p.AppMetadata = map[string]any{}
	}
	if p.UserMetadata == nil {
		p.UserMetadata = map[string]any{}
	}
	return p
}

// PatchIsNoop reports whether merging the patches into p (RFC 7396) surely
// leaves it as it is, comparing values as their JSON encodings would, with
// no allocation: the common login re-persists what it persisted last time,
// and backends answer it without a write. It may answer false for an
// unchanged result (values of types it does not know); the backend then
// merges and compares the encodings.
func PatchIsNoop(p runtime.Profile, appPatch, userPatch map[string]any) bool {
	return patchIsNoop(p.AppMetadata, appPatch) && patchIsNoop(p.UserMetadata, userPatch)
}

// NothingToKeep reports whether a merged profile holds nothing: a user with
// no stored profile whose patch leaves it so gets no record written (a
// login of an unknown user must not cost a file).
func NothingToKeep(p runtime.Profile) bool {
	return len(p.AppMetadata) == 0 && len(p.UserMetadata) == 0
}

// patchIsNoop reports whether merging patch into cur (RFC 7396) surely
// leaves cur as it is, comparing values as their JSON encodings would. It
// may answer false for an unchanged result (values of types it does not
// know); the caller then merges and compares the encodings.
func patchIsNoop(cur, patch map[string]any) bool {
	for k, pv := range patch {
		cv, present := cur[k]
		switch p := pv.(type) {
		case nil:
			if present {
				return false
			}
		case map[string]any:
			cm, ok := cv.(map[string]any)
			if !ok || !patchIsNoop(cm, p) {
				return false
			}
		default:
			if !present || !jsonEqual(cv, pv) {
				return false
			}
		}
	}
	return true
}

// jsonEqual compares a canonical decoded JSON value c (nil, bool, float64,
// string, []any, map[string]any) with v of common Go types.
func jsonEqual(c, v any) bool {
	switch x := v.(type) {
	case nil:
		return c == nil
	case string:
		y, ok := c.(string)
		return ok && x == y
	case bool:
		y, ok := c.(bool)
		return ok && x == y
	case float64:
		y, ok := c.(float64)
		return ok && x == y
	case int:
		return jsonEqual(c, int64(x))
	case int64:
		// Beyond 2^53 a float64 no longer holds every integer: let the
		// caller compare encodings.
		y, ok := c.(float64)
		return ok && x > -1<<53 && x < 1<<53 && float64(x) == y
	case []string:
		y, ok := c.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if s, ok := y[i].(string); !ok || s != x[i] {
				return false
			}
		}
		return true
	case []any:
		y, ok := c.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(y[i], x[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := c.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(yv, xv) {
				return false
			}
		}
		return true
	}
	return false
}
