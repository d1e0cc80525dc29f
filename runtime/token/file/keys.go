// Package file keeps claimsmith's signing keys and token revocations in the
// data directory: the embedded default for one node. It implements
// token.KeyStore and token.RevocationList; runtime/token/redis is the
// shared backend. Both pass runtime/token/tokentest's conformance suite.
package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/internal/fsx"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// KeyStore keeps one file per key, <dir>/<kid>.json, mode 0600 (the file
// holds the private key) in a directory of mode 0700.
type KeyStore struct {
	dir string
}

var _ token.KeyStore = (*KeyStore)(nil)

// NewKeyStore uses dir (usually <data-dir>/keys), creating it if needed.
func NewKeyStore(dir string) (*KeyStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key store %s: %w", dir, err)
	}
	return &KeyStore{dir: dir}, nil
}

// Dir is the directory holding the keys.
func (s *KeyStore) Dir() string { return s.dir }

// LoadKeys reads every <kid>.json file. A file that does not decode is an
// error naming it: starting with a key silently missing could stop tokens
// signed by it from verifying.
func (s *KeyStore) LoadKeys(ctx context.Context) ([]*token.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	var keys []*token.Key
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("key store: %w", err)
		}
		k, err := token.UnmarshalKey(b)
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", p, err)
		}
		if k.ID+".json" != e.Name() {
			return nil, fmt.Errorf("%w: key file %s holds key %s", runtime.ErrInvalid, p, k.ID)
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ID < keys[j].ID })
	return keys, nil
}

// CreateKey writes the key atomically and exclusively: a crash leaves
// either no key or a whole one, and an existing kid is never overwritten.
func (s *KeyStore) CreateKey(ctx context.Context, k *token.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKID(k.ID); err != nil {
		return err
	}
	b, err := token.MarshalKey(k)
	if err != nil {
		return err
	}
	// Created exclusively (link, not rename): two processes generating at
	// once cannot clobber each other.
	if err := fsx.CreateFileExclusive(filepath.Join(s.dir, k.ID+".json"), b, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: key %s", runtime.ErrExists, k.ID)
		}
		return fmt.Errorf("key store: %w", err)
	}
	return nil
}

// DeleteKey removes <kid>.json.
func (s *KeyStore) DeleteKey(ctx context.Context, kid string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKID(kid); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.dir, kid+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("key store: %w", err)
	}
	return fsx.SyncDir(s.dir)
}

// checkKID refuses a kid that is not a plain file name.
func checkKID(kid string) error {
	if kid == "" || strings.ContainsAny(kid, `/\.`) {
		return fmt.Errorf("%w: kid %q", runtime.ErrInvalid, kid)
	}
	return nil
}
