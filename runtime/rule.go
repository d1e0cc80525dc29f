package runtime

import (
	"context"
	"fmt"
	"sort"
)

// Rule is one step of the login pipeline. Run reads the event as earlier
// rules left it and records its commands in out (already reset). Run must not
// keep ev or out after it returns. A returned error is a rule failure and is
// handled by the rule's on_error setting.
type Rule interface {
	Run(ctx context.Context, ev *Event, out *Commands) error
}

// The lifecycle a rule may opt into, after Caddy's modules: Provision acquires
// resources (compile a module, open a pool), Validate checks the decoded and
// provisioned configuration, Cleanup releases what Provision acquired.
type (
	Provisioner interface {
		Provision(ctx context.Context) error
	}
	Validator    interface{ Validate() error }
	CleanerUpper interface{ Cleanup() error }
)

// Decoder strictly decodes a rule entry's own settings into v: an unknown key
// is an error naming the key.
type Decoder func(v any) error

// Constructor builds a rule from its settings. Dependencies (stores, loggers,
// clocks) are closed over by the constructor that cmd registers.
type Constructor func(decode Decoder) (Rule, error)

// Registry maps a rule ID (e.g. "authorization") to its constructor. cmd
// builds one and hands it to the pipeline builder; there is no global registry.
type Registry struct {
	ctors map[string]Constructor
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{ctors: map[string]Constructor{}} }

// Register adds a constructor under id. Registering an id twice is an error.
func (r *Registry) Register(id string, c Constructor) error {
	if id == "" || c == nil {
		return fmt.Errorf("%w: rule registration needs an id and a constructor", ErrInvalid)
	}
	if _, dup := r.ctors[id]; dup {
		return fmt.Errorf("%w: rule %q registered twice", ErrExists, id)
	}
	r.ctors[id] = c
	return nil
}

// Lookup returns the constructor for id.
func (r *Registry) Lookup(id string) (Constructor, bool) {
	c, ok := r.ctors[id]
	return c, ok
}

// IDs lists the registered rule ids in sorted order (for errors and --help).
func (r *Registry) IDs() []string {
	ids := make([]string, 0, len(r.ctors))
	for id := range r.ctors {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ProfileStore keeps the per-user app_metadata and user_metadata objects that
// claimsmith owns for IdPs without a user store. Both are changed only by
// merge patches (see MergePatch).
type ProfileStore interface {
	// Profile returns the stored objects; a user never seen has empty ones.
	// They are a copy the caller owns and may change (the pipeline merges
	// the event into them).
	Profile(ctx context.Context, userID string) (Profile, error)
	// PatchProfile merges the patches (either may be nil) into the stored
	// profile atomically and returns the new profile.
	PatchProfile(ctx context.Context, userID string, appMetadata, userMetadata map[string]any) (Profile, error)
}

// Profile is one user's stored metadata.
type Profile struct {
	UserID       string         `json:"user_id"`
	AppMetadata  map[string]any `json:"app_metadata"`
	UserMetadata map[string]any `json:"user_metadata"`
}
