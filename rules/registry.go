package rules

import (
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Deps are what the built-in rules need, closed over by their constructors.
type Deps struct {
	// Resolver answers policy questions for the authorization rule: the
	// store, or the policy cache in front of it.
	Resolver authz.PolicyResolver
	// Settings reads the extension configuration record (from_extension).
	Settings ExtensionSettings
	// Namespace is the parsed claim namespace ("" when unnamespaced).
	Namespace string
	// Now is the clock of the time-window rule (default time.Now).
	Now func() time.Time
}

// IDs lists every built-in rule id, in the order NewRegistry registers them.
func IDs() []string {
	return []string{IDAuthorization, IDRequiredRoles, IDRequireVerifiedEmail, IDAllowedConnections,
		IDTimeWindow, IDCopyMetadataClaims, IDAddRequestContext}
}

// NewRegistry returns a registry of every built-in rule over deps. It is
// the one place the built-in rules are listed: the server, the dry run and
// the tests all build their pipelines from it.
func NewRegistry(deps Deps) (*runtime.Registry, error) {
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	ns := deps.Namespace
	ctors := map[string]runtime.Constructor{
		IDAuthorization: func(d runtime.Decoder) (runtime.Rule, error) {
			return NewAuthorization(deps.Resolver, deps.Settings, ns, d)
		},
		IDRequiredRoles:        func(d runtime.Decoder) (runtime.Rule, error) { return NewRequiredRoles(d) },
		IDRequireVerifiedEmail: func(d runtime.Decoder) (runtime.Rule, error) { return NewRequireVerifiedEmail(d) },
		IDAllowedConnections:   func(d runtime.Decoder) (runtime.Rule, error) { return NewAllowedConnections(d) },
		IDTimeWindow:           func(d runtime.Decoder) (runtime.Rule, error) { return NewTimeWindow(now, d) },
		IDCopyMetadataClaims:   func(d runtime.Decoder) (runtime.Rule, error) { return NewCopyMetadataClaims(ns, d) },
		IDAddRequestContext:    func(d runtime.Decoder) (runtime.Rule, error) { return NewAddRequestContext(ns, d) },
	}
	reg := runtime.NewRegistry()
	for _, id := range IDs() {
		if err := reg.Register(id, ctors[id]); err != nil {
			return nil, err
		}
	}
	return reg, nil
}
