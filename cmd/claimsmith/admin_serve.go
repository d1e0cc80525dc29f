package main

import (
	"path/filepath"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// adminServerStore is what the admin API needs of the server's store: the
// file store, or serve's wrapper that invalidates the policy cache on writes.
type adminServerStore interface {
	hooks.AdminStore
	authz.ProfileLister
}

// adminServerRoutes builds the admin API (/api/…) over the server's store,
// with the keys and audit log in DIR/admin.
func adminServerRoutes(a *app, st adminServerStore) ([]hooks.Route, error) {
	dir := filepath.Join(a.dataDir, admin.Dir)
	keys, err := admin.OpenFileKeyStore(dir, nil)
	if err != nil {
		return nil, err
	}
	audit, err := admin.OpenFileAuditLog(dir, nil)
	if err != nil {
		return nil, err
	}
	api, err := hooks.NewAdminAPI(hooks.AdminConfig{Store: st, Keys: keys, Audit: audit, Profiles: st, Log: a.log})
	if err != nil {
		return nil, err
	}
	return api.ServerRoutes(), nil
}
