package main

import (
	"path/filepath"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz/file"
)

// adminServerRoutes builds the admin API (/api/…) over the server's store,
// with the keys and audit log in DIR/admin.
func adminServerRoutes(a *app, st *file.Store) ([]hooks.Route, error) {
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
