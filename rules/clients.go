package rules

import (
	"context"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// ClientDirectory adapts the store's applications to the pipeline, which
// fills in a client's missing name and metadata (IdPs such as Hydra send
// only a client_id) so that required-roles works for them.
func ClientDirectory(apps authz.ApplicationReader) runtime.ClientDirectory {
	return clientDirectory{apps: apps}
}

type clientDirectory struct{ apps authz.ApplicationReader }

func (d clientDirectory) LookupClient(ctx context.Context, clientID string) (runtime.Client, error) {
	a, err := d.apps.Application(ctx, clientID)
	if err != nil {
		return runtime.Client{}, err
	}
	return runtime.Client{ClientID: a.ClientID, Name: a.Name, Metadata: a.Metadata}, nil
}
