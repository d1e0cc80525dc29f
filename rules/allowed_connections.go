package rules

import (
	"context"
	"fmt"
	"slices"

	"github.com/claimsmith/claimsmith/runtime"
)

// AllowedConnectionsConfig is the allowed-connections rule's `config`.
type AllowedConnectionsConfig struct {
	// Clients maps a client_id to the connections its users may log in
	// with. Clients not listed are not restricted.
	Clients map[string][]string `json:"clients"`
	// MetadataKey names a client metadata key holding a comma-separated
	// allow-list (default allowed_connections); it applies to clients not
	// listed in Clients, so the list can live with the application.
	MetadataKey string `json:"metadata_key"`
}

// AllowedConnections allows a client's users to log in only through the
// listed connections (the Rules gallery's "allow access only from
// specific connections"). It denies with access_denied, or abstains.
type AllowedConnections struct {
	clients map[string][]string
	key     string
}

// NewAllowedConnections builds the rule.
func NewAllowedConnections(decode runtime.Decoder) (*AllowedConnections, error) {
	cfg := AllowedConnectionsConfig{MetadataKey: "allowed_connections"}
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	for id, conns := range cfg.Clients {
		if len(conns) == 0 || slices.Contains(conns, "") {
			return nil, &runtime.SettingError{Key: "clients." + id, Reason: "needs at least one non-empty connection name"}
		}
	}
	return &AllowedConnections{clients: cfg.Clients, key: cfg.MetadataKey}, nil
}

// Run implements runtime.Rule.
func (r *AllowedConnections) Run(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
	conn := ev.Connection.Name
	if list, ok := r.clients[ev.Client.ClientID]; ok {
		if !slices.Contains(list, conn) {
			r.deny(ev, out)
		}
		return nil
	}
	if r.key == "" {
		return nil
	}
	list := splitList(ev.Client.Metadata[r.key])
	if len(list) > 0 && !slices.Contains(list, conn) {
		r.deny(ev, out)
	}
	return nil
}

func (r *AllowedConnections) deny(ev *runtime.Event, out *runtime.Commands) {
	out.Deny(fmt.Sprintf("Logging in to %s with connection %q is not allowed", displayName(ev.Client), ev.Connection.Name), runtime.CodeAccessDenied)
}
