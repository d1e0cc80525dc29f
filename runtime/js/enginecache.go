package js

import (
	"strings"

	"github.com/claimsmith/claimsmith/runtime/internal/wasmcache"
)

// engineFile names the decompressed engine module in the cache directory
// by its hash: the loader's pruning keeps this one and removes other
// builds' once unused for a while.
func engineFile() string {
	return wasmcache.EnginePrefix + strings.TrimSpace(engineSum) + ".wasm"
}

// touchEngineFile records that the kept engine module was used, so another
// build's claimsmith sharing the directory does not prune it as unused.
func (e *Engine) touchEngineFile(path string) {
	if err := wasmcache.Touch(path); err != nil {
		e.log.Debug("cannot mark the cached JavaScript engine used", "path", path, "err", err)
	}
}
