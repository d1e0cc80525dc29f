package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
)

// shardLockDir holds one lock file per profile shard (first hash byte).
const shardLockDir = "plocks"

// profileFile is a user's profile on disk. The user id is kept inside: the
// file name is a hash (user ids hold characters no file name may).
type profileFile struct {
	UserID       string         `json:"user_id"`
	AppMetadata  map[string]any `json:"app_metadata"`
	UserMetadata map[string]any `json:"user_metadata"`
}

// profileRel is the path of userID's profile inside a generation directory.
func profileRel(userID string) string {
	sum := sha256.Sum256([]byte(userID))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(h[:2], h+".json")
}

func (s *Store) readProfile(gen, userID string) (runtime.Profile, error) {
	path := filepath.Join(s.path(gen), profileRel(userID))
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID}), nil
	}
	if err != nil {
		return runtime.Profile{}, fmt.Errorf("profile of user %q: %w", userID, err)
	}
	var pf profileFile
	if err := json.Unmarshal(b, &pf); err != nil {
		return runtime.Profile{}, fmt.Errorf("profile of user %q: %s: %w", userID, path, err)
	}
	if pf.UserID != userID {
		return runtime.Profile{}, fmt.Errorf("profile of user %q: %s belongs to %q (hash collision or damaged file)", userID, path, pf.UserID)
	}
	return authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID, AppMetadata: pf.AppMetadata, UserMetadata: pf.UserMetadata}), nil
}

// writeProfile writes one profile atomically (temp, fsync, rename, fsync the
// directory), creating its hash directory when needed.
func writeProfile(genDir string, p runtime.Profile, syncDir bool) error {
	path := filepath.Join(genDir, profileRel(p.UserID))
	if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
			return fmt.Errorf("profile of user %q: %w", p.UserID, err)
		}
		if syncDir { // the new directory's entry must be durable too
			if err := fsx.SyncDir(genDir); err != nil {
				return err
			}
			if err := fsx.SyncDir(filepath.Dir(genDir)); err != nil {
				return err
			}
		}
	}
	b, err := json.Marshal(profileFile(p))
	if err != nil {
		return fmt.Errorf("profile of user %q: %w", p.UserID, err)
	}
	write := fsx.ReplaceFileNoSync
	if syncDir {
		write = fsx.WriteFileAtomic
	}
	if err := write(path, b, filePerm); err != nil {
		return fmt.Errorf("profile of user %q: %w", p.UserID, err)
	}
	return nil
}

// Profile implements runtime.ProfileStore.
func (s *Store) Profile(ctx context.Context, userID string) (runtime.Profile, error) {
	var p runtime.Profile
	err := s.withLock(ctx, false, func() error {
		h, _, err := s.readHead()
		if err != nil {
			return err
		}
		p, err = s.readProfile(h.Profiles, userID)
		return err
	})
	return p, err
}

// PatchProfile implements runtime.ProfileStore: read, merge and rewrite one
// user's file. It holds the directory lock shared (an import, which swaps the
// profile generation, holds it exclusively) and the user's shard lock
// exclusively, so patches of users in different shards run in parallel and
// patches of one user never lose each other's keys. A patch that changes
// nothing is not written. The authz revision does not change.
func (s *Store) PatchProfile(ctx context.Context, userID string, appMetadata, userMetadata map[string]any) (runtime.Profile, error) {
	if userID == "" {
		return runtime.Profile{}, &runtime.ValidationError{Entity: "profile", Field: "user_id", Reason: "is required"}
	}
	rel := profileRel(userID)
	var out runtime.Profile
	err := s.withLock(ctx, false, func() error {
		if err := os.MkdirAll(s.path(shardLockDir), dirPerm); err != nil {
			return fmt.Errorf("profile locks: %w", err)
		}
		return fsx.WithLock(ctx, filepath.Join(s.path(shardLockDir), rel[:2]), true, func() error {
			h, _, err := s.readHead()
			if err != nil {
				return err
			}
			cur, err := s.readProfile(h.Profiles, userID)
			if err != nil {
				return err
			}
			next, err := authz.MergeProfile(cur, userID, appMetadata, userMetadata, s.opt.ProfileLimit)
			if err != nil {
				return err
			}
			out = authz.ProfileFromRecord(authz.ProfileRecord{UserID: userID, AppMetadata: next.AppMetadata, UserMetadata: next.UserMetadata})
			if sameProfile(cur, next) {
				return nil
			}
			return writeProfile(s.path(h.Profiles), next, true)
		})
	})
	return out, err
}

// sameProfile reports whether two profiles encode identically (encoding/json
// sorts map keys, and 1 and 1.0 both encode as 1).
func sameProfile(a, b runtime.Profile) bool {
	ja, err1 := json.Marshal(profileFile(a))
	jb, err2 := json.Marshal(profileFile(b))
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// writeProfileGeneration writes an imported profile set into a new
// generation directory and makes it durable before HEAD may name it.
func (s *Store) writeProfileGeneration(gen string, recs []authz.ProfileRecord) error {
	dir := s.path(gen)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("profiles %s: %w", dir, err)
	}
	for _, r := range recs {
		p := authz.ProfileFromRecord(r)
		if err := authz.CheckProfile(p, s.opt.ProfileLimit); err != nil {
			return err
		}
	}
	for _, r := range recs {
		if err := writeProfile(dir, authz.ProfileFromRecord(r), false); err != nil {
			return err
		}
	}
	// One file-system sync instead of an fsync per file and directory.
	return fsx.SyncTree(dir)
}

// ListProfiles implements authz.ProfileLister.
func (s *Store) ListProfiles(ctx context.Context, fn func(runtime.Profile) error) error {
	var all []runtime.Profile
	err := s.withLock(ctx, false, func() error {
		h, _, err := s.readHead()
		if err != nil {
			return err
		}
		root := s.path(h.Profiles)
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return filepath.SkipDir
			}
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".json") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var pf profileFile
			if err := json.Unmarshal(b, &pf); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			all = append(all, authz.ProfileFromRecord(authz.ProfileRecord{UserID: pf.UserID, AppMetadata: pf.AppMetadata, UserMetadata: pf.UserMetadata}))
			return ctx.Err()
		})
		return err
	})
	if err != nil {
		return err
	}
	for _, p := range all {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}
