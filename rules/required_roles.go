package rules

import (
	"context"
	"strings"

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
	key string
}

// NewRequiredRoles builds the rule.
func NewRequiredRoles(decode runtime.Decoder) (*RequiredRoles, error) {
	cfg := RequiredRolesConfig{MetadataKey: "required_roles"}
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.MetadataKey == "" {
		return nil, &runtime.SettingError{Key: "metadata_key", Reason: "empty"}
	}
	return &RequiredRoles{key: cfg.MetadataKey}, nil
}

// Run implements runtime.Rule.
func (r *RequiredRoles) Run(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
	required := ev.Client.Metadata[r.key]
	var held []string
	if ev.Authorization != nil {
		held = ev.Authorization.Roles
	}
	listed := false
	// Scan the comma-separated list in place: no allocation per login.
	for rest := required; rest != ""; {
		var item string
		item, rest, _ = strings.Cut(rest, ",")
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		listed = true
		for _, h := range held {
			if h == item {
				return nil
			}
		}
	}
	if !listed {
		return nil
	}
	if ev.Authorization == nil {
		out.Logf("warn", "no authorization rule ran before %s: the user holds no roles", IDRequiredRoles)
	}
	out.Deny("You do not have the required role to access "+displayName(ev.Client), runtime.CodeUnauthorized)
	return nil
}
