package main

import (
	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// adminServerStore is what the admin API needs of the server's store: the
// file store, or serve's wrapper that invalidates the policy cache on writes.
type adminServerStore interface {
	hooks.AdminStore
	authz.ProfileLister
}

// adminServerRoutes builds the admin API (/api/…) over the server's store,
// with the keys and audit log of the configured backend (DIR/admin, or
// Redis: see stores.go).
func adminServerRoutes(a *app, st adminServerStore, as adminStores) ([]hooks.Route, error) {
	api, err := hooks.NewAdminAPI(hooks.AdminConfig{Store: st, Keys: as.keys, Audit: as.audit, Profiles: st, Log: a.log})
	if err != nil {
		return nil, err
	}
	return api.ServerRoutes(), nil
}
