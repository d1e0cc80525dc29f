// Package wasmcache owns the layout of claimsmith's on-disk cache of
// compiled WebAssembly and keeps it bounded.
//
// A cache directory (runtime/wasm Options.CacheDir) holds wazero's file
// cache, one directory per wazero version and platform
// (wazero-<version>-<arch>-<os>, entries named by a hash of the module),
// and, in the JavaScript engine's directory, the decompressed engine module
// (js-engine-<sha256>.wasm). Upgrades, engine rebuilds and changed rules
// leave the old entries behind; Prune removes them when a loader opens the
// directory.
//
// wazero names its directory by the version the binary's build information
// records, "dev" when there is none: test binaries. Its entries are keyed by
// the module and the CPU, not by wazero's version, and an entry records the
// version name it was written by, so two wazero versions both called "dev"
// would load each other's machine code. Open therefore gives a binary whose
// wazero calls itself something other than the version actually compiled in
// a directory of its own, named by the real version.
package wasmcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
)

// EnginePrefix starts the name of the JavaScript engine's decompressed
// module kept beside the compiled code (runtime/js).
const EnginePrefix = "js-engine-"

// ErrUnknownVersion: this binary cannot tell which wazero it was built
// with (a local replace of the module), so no cached code can be trusted.
var ErrUnknownVersion = errors.New("wazero's version is unknown to this binary")

const wazeroModule = "github.com/tetratelabs/wazero"

// Dir is a cache directory opened for this binary's wazero.
type Dir struct {
	root string
	// current is root's entry of this binary's wazero; wazero is the
	// directory to give wazero.NewCompilationCacheWithDir and inner the one
	// it writes its entries in (current itself, or one below it).
	current, wazero, inner string
}

// Open names root's entries for this binary's wazero. It touches nothing
// on disk.
func Open(root string) (*Dir, error) {
	named, real := wazeroVersions()
	if real == "" {
		return nil, fmt.Errorf("compilation cache %s: %w", root, ErrUnknownVersion)
	}
	platform := "-" + goruntime.GOARCH + "-" + goruntime.GOOS
	d := &Dir{root: root}
	if named == real {
		d.wazero = root
		d.current = filepath.Join(root, "wazero-"+real+platform)
		d.inner = d.current
	} else {
		// A directory of the real version around the one wazero makes,
		// e.g. wazero-v1.12.0+dev-amd64-linux/wazero-dev-amd64-linux.
		d.current = filepath.Join(root, "wazero-"+real+"+"+named+platform)
		d.wazero = d.current
		d.inner = filepath.Join(d.current, "wazero-"+named+platform)
	}
	return d, nil
}

// Root is the cache directory.
func (d *Dir) Root() string { return d.root }

// WazeroDir is the directory to give wazero.NewCompilationCacheWithDir.
func (d *Dir) WazeroDir() string { return d.wazero }

// Current is root's entry of this binary's wazero, which Prune keeps.
func (d *Dir) Current() string { return d.current }

// Use marks this binary's directory as used now (what keeps it from being
// pruned by another version's claimsmith) and makes it again if someone
// removed it: wazero writes a compiled module into it and fails the
// compilation when it cannot.
func (d *Dir) Use() error {
	if err := os.MkdirAll(d.inner, 0o700); err != nil {
		return err
	}
	now := time.Now()
	return os.Chtimes(d.current, now, now)
}

// Touch marks a cached file as used now (its mtime), for Prune.
func Touch(path string) error {
	now := time.Now()
	return os.Chtimes(path, now, now)
}

// wazeroVersions returns the version wazero names its cache directory by
// (its own rule, internal/version: the build information's record of the
// module, else of the main module, else "dev") and the version actually
// compiled in ("" when unknown).
func wazeroVersions() (named, real string) {
	missing := func(v string) bool { return v == "" || v == "(devel)" }
	var dep *debug.Module
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if strings.Contains(m.Path, wazeroModule) {
				dep = m
				named = m.Version
			}
		}
		if missing(named) {
			named = info.Main.Version
		}
	}
	if missing(named) {
		named = "dev"
	}
	// The source file names the module version it came from; a test binary
	// records no dependencies, but its code still has file names.
	real = versionFromSource()
	if real == "" && dep != nil {
		real = dep.Version
		if dep.Replace != nil {
			real = dep.Replace.Version // "" for a local directory
		}
	}
	if missing(real) {
		real = ""
	}
	return named, real
}

// versionFromSource reads wazero's version from the file name of one of its
// functions: .../github.com/tetratelabs/wazero@v1.12.0/cache.go (with or
// without -trimpath). A local or vendored copy has no version there.
func versionFromSource() string {
	pc := reflect.ValueOf(wazero.NewCompilationCacheWithDir).Pointer()
	fn := goruntime.FuncForPC(pc)
	if fn == nil {
		return ""
	}
	file, _ := fn.FileLine(pc)
	return versionInPath(file)
}

func versionInPath(file string) string {
	file = filepath.ToSlash(file)
	i := strings.LastIndex(file, wazeroModule)
	if i < 0 {
		return ""
	}
	rest := file[i+len(wazeroModule):]
	if strings.HasPrefix(rest, "/v") { // a major version suffix: wazero/v2@v2.0.0
		j := 2
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j > 2 {
			rest = rest[j:]
		}
	}
	if !strings.HasPrefix(rest, "@") {
		return ""
	}
	v, _, ok := strings.Cut(rest[1:], "/")
	if !ok || v == "" {
		return ""
	}
	return v
}
