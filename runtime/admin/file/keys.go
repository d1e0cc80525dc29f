package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
)

// Dir is the sub-directory of the data dir holding admin keys and the audit
// log, apart from the authorization store's own files.
const Dir = "admin"

const (
	keysFile = "keys.json"
	keysLock = "keys.lock"
)

// KeyStore keeps admin keys in <dir>/keys.json (mode 0600), written
// atomically under an flock so the CLI can add or revoke keys while a
// server runs. The server notices a changed file (size, mtime, inode) on the
// next request and reloads it, so a revoked key stops working at once.
type KeyStore struct {
	dir string
	now func() time.Time

	mu     sync.Mutex
	keys   []admin.Key
	loaded os.FileInfo // stat of the file the cache was read from; nil if absent
}

var _ admin.KeyStore = (*KeyStore)(nil)

// keyFile is the on-disk format.
type keyFile struct {
	Keys []admin.Key `json:"keys"`
}

// OpenKeyStore opens (creating the directory if needed) the key store in
// dir, normally <data dir>/admin. now may be nil (wall clock).
func OpenKeyStore(dir string, now func() time.Time) (*KeyStore, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("admin key store: %w", err)
	}
	s := &KeyStore{dir: dir, now: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.refreshLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *KeyStore) path() string { return filepath.Join(s.dir, keysFile) }

// refreshLocked re-reads the file when it changed since the last read.
func (s *KeyStore) refreshLocked() ([]admin.Key, error) {
	st, err := os.Stat(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		s.keys, s.loaded = nil, nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin key store: %w", err)
	}
	if s.loaded != nil && os.SameFile(st, s.loaded) && st.Size() == s.loaded.Size() && st.ModTime().Equal(s.loaded.ModTime()) {
		return s.keys, nil
	}
	keys, err := readKeys(s.path())
	if err != nil {
		return nil, err
	}
	s.keys, s.loaded = keys, st
	return keys, nil
}

func readKeys(path string) ([]admin.Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin key store: %w", err)
	}
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("admin key store %s: %v: %w", path, err, runtime.ErrInvalid)
	}
	for i, k := range kf.Keys {
		if k.ID == "" || len(k.Hash) != 64 {
			return nil, fmt.Errorf("admin key store %s: key #%d (%q) has no id or a malformed hash: %w", path, i, k.Name, runtime.ErrInvalid)
		}
	}
	return kf.Keys, nil
}

// update runs fn on the current keys under the cross-process lock and
// writes the result atomically.
func (s *KeyStore) update(ctx context.Context, fn func([]admin.Key) ([]admin.Key, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lk, err := fsx.LockFile(ctx, filepath.Join(s.dir, keysLock), true)
	if err != nil {
		return fmt.Errorf("admin key store: lock: %w", err)
	}
	defer lk.Unlock() //nolint:errcheck // closing releases it anyway
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := readKeys(s.path())
	if err != nil {
		return err
	}
	next, err := fn(slices.Clone(cur))
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(keyFile{Keys: next}, "", "  ")
	if err != nil {
		return err
	}
	if err := fsx.WriteFileAtomic(s.path(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("admin key store: %w", err)
	}
	s.loaded = nil // force a re-read: mtime granularity may hide this write
	_, err = s.refreshLocked()
	return err
}

// Create implements admin.KeyStore.
func (s *KeyStore) Create(ctx context.Context, name string, scopes []string) (admin.Key, string, error) {
	k, secret, err := admin.NewKey(name, scopes, s.now())
	if err != nil {
		return admin.Key{}, "", err
	}
	err = s.update(ctx, func(keys []admin.Key) ([]admin.Key, error) {
		for _, o := range keys {
			if o.Name == name {
				return nil, fmt.Errorf("admin key name %q is used by key %s: %w", name, o.ID, runtime.ErrExists)
			}
		}
		return append(keys, k), nil
	})
	if err != nil {
		return admin.Key{}, "", err
	}
	return k, secret, nil
}

// Authenticate implements admin.KeyStore.
func (s *KeyStore) Authenticate(ctx context.Context, secret string) (admin.Key, error) {
	if err := ctx.Err(); err != nil {
		return admin.Key{}, err
	}
	s.mu.Lock()
	keys, err := s.refreshLocked()
	s.mu.Unlock()
	if err != nil {
		return admin.Key{}, err
	}
	k, ok := admin.MatchKey(keys, secret)
	if !ok {
		return admin.Key{}, fmt.Errorf("admin key not recognised: %w", runtime.ErrUnauthenticated)
	}
	return k, nil
}

// List implements admin.KeyStore.
func (s *KeyStore) List(ctx context.Context) ([]admin.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := s.refreshLocked()
	return slices.Clone(keys), err
}

// Revoke implements admin.KeyStore.
func (s *KeyStore) Revoke(ctx context.Context, idOrName string) error {
	return s.update(ctx, func(keys []admin.Key) ([]admin.Key, error) {
		i := slices.IndexFunc(keys, func(k admin.Key) bool { return k.ID == idOrName || k.Name == idOrName })
		if i < 0 {
			return nil, fmt.Errorf("admin key %q: %w", idOrName, runtime.ErrNotFound)
		}
		return slices.Delete(keys, i, i+1), nil
	})
}
