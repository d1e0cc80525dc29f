package rules

import (
	"context"

	"github.com/claimsmith/claimsmith/runtime"
)

// RequiredRolesConfig is the required-roles rule's `config`.
type RequiredRolesConfig struct {
	// MetadataKey is the client metadata key holding the comma-separated
	// roles (default required_roles, as the extension's companion rule).
	MetadataKey string `json:"metadata_key"`
}

// RequiredRoles enforces client.metadata.required_roles: when it names
// roles, the user must hold at least one of them (event.authorization, so
// the authorization rule runs first). It denies with `unauthorized` and the
// extension's message; it never grants access, so it abstains when the user
// passes or the client requires nothing.
type RequiredRoles struct {
	gate runtime.RequiredRoles
}

// NewRequiredRoles builds the rule.
func NewRequiredRoles(decode runtime.Decoder) (*RequiredRoles, error) {
	cfg := RequiredRolesConfig{MetadataKey: runtime.DefaultRequiredRolesKey}
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.MetadataKey == "" {
		return nil, &runtime.SettingError{Key: "metadata_key", Reason: "empty"}
	}
	return &RequiredRoles{gate: runtime.RequiredRoles{MetadataKey: cfg.MetadataKey}}, nil
}

// RequiredRoles implements runtime.RolesGate: live introspection applies
// the same gate, with the same metadata key.
func (r *RequiredRoles) RequiredRoles() runtime.RequiredRoles { return r.gate }

// Run implements runtime.Rule.
func (r *RequiredRoles) Run(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
	var held []string
	if ev.Authorization != nil {
		held = ev.Authorization.Roles
	}
	if listed, ok := r.gate.Check(ev.Client.Metadata, held); !listed || ok {
		return nil
	}
	if ev.Authorization == nil {
		out.Logf("warn", "no authorization rule ran before %s: the user holds no roles", IDRequiredRoles)
	}
	out.Deny("You do not have the required role to access "+displayName(ev.Client), runtime.CodeUnauthorized)
	return nil
}
