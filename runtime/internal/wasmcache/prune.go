package wasmcache

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The default policy (README, "Compiled code on disk").
const (
	// DefaultMaxAge: an entry nobody used for a week is removed.
	DefaultMaxAge = 7 * 24 * time.Hour
	// DefaultMaxBytes caps one cache directory; past it, entries are removed
	// least recently used first, other versions' before this one's.
	DefaultMaxBytes = 512 << 20
	// DefaultRecent: the size cap spares what was used in the last hour
	// (another process may be about to read it, or still writing it).
	DefaultRecent = time.Hour
)

// Policy says what Prune removes. Zero fields take the defaults.
type Policy struct {
	MaxAge   time.Duration
	MaxBytes int64
	Recent   time.Duration
	// Keep names entries of root (base names) its caller still uses: the
	// current JavaScript engine module.
	Keep []string
	Now  func() time.Time
}

// Stats is what one Prune did.
type Stats struct {
	Removed               int
	FreedBytes, KeptBytes int64
	Failed                int
	Took                  time.Duration
	FirstError            error
}

// entry is one unit of removal: a file, or another version's whole
// directory.
type entry struct {
	path string
	size int64
	used time.Time
	// tier orders the size cap's removals: 0 other versions and old engine
	// modules, 1 this version's compiled modules.
	tier  int
	keep  bool
	isDir bool
}

// Prune removes, from the entries of root claimsmith owns (wazero-*-*-*
// directories, js-engine-* files, the compiled modules in this binary's
// directory and the temp files of interrupted writes), those not used for
// MaxAge, then, while the directory holds more than MaxBytes, the least
// recently used ones. It never removes this binary's directory, the Keep
// entries, or anything else in root. "Used" is a file's last access or
// modification, whichever is later (callers touch what they use; wazero's
// reads only show in the access time, which Linux updates about once a
// day, and not at all on a noatime mount: there a module still in use is
// compiled again once MaxAge after it was written). Removing a file another
// process has open is harmless (it keeps reading it), and what it has not
// opened yet it compiles again. Failures are counted, never fatal.
func (d *Dir) Prune(ctx context.Context, p Policy) Stats {
	started := time.Now()
	p = p.withDefaults()
	var st Stats
	fail := func(err error) {
		if errors.Is(err, fs.ErrNotExist) { // someone else removed it first
			return
		}
		st.Failed++
		if st.FirstError == nil {
			st.FirstError = err
		}
	}
	entries := d.scan(p, fail)
	now := p.Now()
	var total int64
	for _, e := range entries {
		total += e.size
	}
	remove := func(e *entry) {
		var err error
		if e.isDir {
			err = os.RemoveAll(e.path)
		} else {
			err = os.Remove(e.path)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			fail(err)
			return
		}
		st.Removed++
		st.FreedBytes += e.size
		total -= e.size
		e.size, e.keep = 0, true // gone: neither counted nor removed again
	}
	slices.SortFunc(entries, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.tier, b.tier), a.used.Compare(b.used))
	})
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		if !e.keep && now.Sub(e.used) > p.MaxAge {
			remove(e)
		}
	}
	for _, e := range entries {
		if total <= p.MaxBytes || ctx.Err() != nil {
			break
		}
		if !e.keep && now.Sub(e.used) > p.Recent {
			remove(e)
		}
	}
	st.KeptBytes = total
	st.Took = time.Since(started)
	return st
}

func (p Policy) withDefaults() Policy {
	if p.MaxAge <= 0 {
		p.MaxAge = DefaultMaxAge
	}
	if p.MaxBytes <= 0 {
		p.MaxBytes = DefaultMaxBytes
	}
	if p.Recent <= 0 {
		p.Recent = DefaultRecent
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// scan lists root's entries claimsmith owns.
func (d *Dir) scan(p Policy, fail func(error)) []*entry {
	des, err := os.ReadDir(d.root)
	if err != nil {
		fail(err)
		return nil
	}
	var out []*entry
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(d.root, name)
		switch {
		case path == d.current:
			// Its compiled modules, one by one; the directory stays.
			_ = filepath.WalkDir(path, func(p string, de fs.DirEntry, err error) error {
				if err != nil {
					fail(err)
					return nil
				}
				if de.Type().IsRegular() {
					if e := fileEntry(p, de, fail); e != nil {
						e.tier = 1
						out = append(out, e)
					}
				}
				return nil
			})
		case de.IsDir() && isVersionDir(name):
			if e := dirEntry(path, fail); e != nil {
				out = append(out, e)
			}
		case de.Type().IsRegular() && strings.HasPrefix(name, EnginePrefix):
			if e := fileEntry(path, de, fail); e != nil {
				e.keep = slices.Contains(p.Keep, name)
				out = append(out, e)
			}
		}
	}
	return out
}

// isVersionDir: wazero-<version>-<arch>-<os>, as wazero names them (not,
// say, the wazero-test directory runtime/wasm's tests used).
func isVersionDir(name string) bool {
	return strings.HasPrefix(name, "wazero-") && strings.Count(name, "-") >= 3
}

func fileEntry(path string, de fs.DirEntry, fail func(error)) *entry {
	info, err := de.Info()
	if err != nil {
		fail(err)
		return nil
	}
	return &entry{path: path, size: info.Size(), used: lastUse(info)}
}

// dirEntry sums another version's directory: its size, and its last use
// (the directory's mtime, which its users touch, or a file's). Directory
// access times are ignored: this very scan reads them.
func dirEntry(path string, fail func(error)) *entry {
	e := &entry{path: path, isDir: true}
	_ = filepath.WalkDir(path, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			fail(err)
			return nil
		}
		info, err := de.Info()
		if err != nil {
			fail(err)
			return nil
		}
		used := info.ModTime()
		if info.Mode().IsRegular() {
			e.size += info.Size()
			used = lastUse(info)
		}
		if used.After(e.used) {
			e.used = used
		}
		return nil
	})
	return e
}

// Log reports a Prune: Info when it removed something, Warn when it could
// not remove or read something (the cache then stays larger; nothing else
// is affected).
func (st Stats) Log(log *slog.Logger, dir string) {
	if st.Removed > 0 {
		log.Info("compiled code cache pruned", "dir", dir, "removed", st.Removed,
			"freed_bytes", st.FreedBytes, "kept_bytes", st.KeptBytes, "took", st.Took.Round(time.Microsecond))
	}
	if st.Failed > 0 {
		log.Warn("compiled code cache: could not prune everything", "dir", dir, "failures", st.Failed, "err", st.FirstError)
	}
}
