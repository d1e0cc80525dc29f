package runtime

import (
	"context"
	"time"
)

// ModuleSpec is a pipeline entry that names a WebAssembly rule (`wasm: path`
// in the config) instead of a built-in one.
type ModuleSpec struct {
	// Name identifies the rule in traces and errors.
	Name string
	// Path is the .wasm file, already resolved against the config file's folder.
	Path string
	// Timeout bounds one call; the pipeline also bounds the whole run.
	Timeout time.Duration
	// MemoryBytes caps the guest's linear memory (0: the loader's default).
	MemoryBytes uint64
	// AllowedHosts are the hosts the guest may reach over HTTP (default none).
	AllowedHosts []string
	// PoolSize is the number of warm instances (0: GOMAXPROCS).
	PoolSize int
	// Config is the rule's own settings, readable by the guest (config_get).
	Config map[string]string
	// Secrets names environment variables whose values the rule gets as
	// secrets (JavaScript rules: event.secrets, Rules' configuration).
	Secrets []string
}

// ModuleLoader compiles a WebAssembly rule once and returns a Rule that serves
// calls from a pool of warm instances. runtime/wasm implements it; cmd hands
// it to the pipeline builder. The returned rule may implement CleanerUpper.
type ModuleLoader interface {
	LoadModule(ctx context.Context, spec ModuleSpec) (Rule, error)
}

// Enricher runs one login event through the configured pipeline. A deny is a
// Result with Decision.Allowed false, not an error; an error means the
// pipeline itself could not run (for example its budget ran out before it
// started). The hooks depend on this interface only.
type Enricher interface {
	Run(ctx context.Context, ev *Event) (*Result, error)
}
