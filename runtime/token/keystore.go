package token

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
)

// KeyStore persists signing keys. The file store keeps them in the data
// directory; a Redis store shares them between nodes. Records are written
// with MarshalKey and read with UnmarshalKey.
type KeyStore interface {
	// LoadKeys returns every stored key.
	LoadKeys(ctx context.Context) ([]*Key, error)
	// CreateKey stores a new key; runtime.ErrExists if its kid is taken.
	CreateKey(ctx context.Context, k *Key) error
	// DeleteKey removes a key; deleting an unknown kid is not an error.
	DeleteKey(ctx context.Context, kid string) error
}

// FileKeyStore keeps one file per key, <dir>/<kid>.json, mode 0600 (the file
// holds the private key) in a directory of mode 0700.
type FileKeyStore struct {
	dir string
}

// NewFileKeyStore uses dir (usually <data-dir>/keys), creating it if needed.
func NewFileKeyStore(dir string) (*FileKeyStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key store %s: %w", dir, err)
	}
	return &FileKeyStore{dir: dir}, nil
}

// Dir is the directory holding the keys.
func (s *FileKeyStore) Dir() string { return s.dir }

// LoadKeys reads every <kid>.json file. A file that does not decode is an
// error naming it: starting with a key silently missing could stop tokens
// signed by it from verifying.
func (s *FileKeyStore) LoadKeys(ctx context.Context) ([]*Key, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	var keys []*Key
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
		k, err := UnmarshalKey(b)
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

// CreateKey writes the key atomically: a temporary file (0600) is written,
// synced and linked into place, so a crash leaves either no key or a whole one,
// and an existing kid is never overwritten.
func (s *FileKeyStore) CreateKey(ctx context.Context, k *Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := MarshalKey(k)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".tmp-"+k.ID+"-*")
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("key store: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("key store: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("key store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	// Link fails when the target exists, unlike rename: two processes
	// generating at once cannot clobber each other.
	if err := os.Link(tmp, filepath.Join(s.dir, k.ID+".json")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: key %s", runtime.ErrExists, k.ID)
		}
		return fmt.Errorf("key store: %w", err)
	}
	return syncDir(s.dir)
}

// DeleteKey removes <kid>.json.
func (s *FileKeyStore) DeleteKey(ctx context.Context, kid string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if kid == "" || strings.ContainsAny(kid, `/\.`) {
		return fmt.Errorf("%w: kid %q", runtime.ErrInvalid, kid)
	}
	if err := os.Remove(filepath.Join(s.dir, kid+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("key store: %w", err)
	}
	return syncDir(s.dir)
}

// syncDir makes a directory entry change durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
