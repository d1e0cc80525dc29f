package hooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
)

// AdminKeys authenticates admin API keys (runtime/admin's key stores).
type AdminKeys interface {
	Authenticate(ctx context.Context, secret string) (admin.Key, error)
}

// AuthenticateAdmin checks the request's bearer admin key and its scope:
// 401 without a valid key, 403 when the key lacks the scope. The admin API
// (hooks/admin) and POST /api/reload share it.
func AuthenticateAdmin(r *http.Request, keys AdminKeys, scope string) (admin.Key, error) {
	secret, ok := bearerToken(r)
	if !ok {
		return admin.Key{}, authErr("bearer", "an admin key is required (Authorization: Bearer <key>)")
	}
	key, err := keys.Authenticate(r.Context(), secret)
	if err != nil {
		if errors.Is(err, runtime.ErrUnauthenticated) {
			return admin.Key{}, authErr("bearer", "the admin key is not valid")
		}
		return admin.Key{}, err
	}
	if !key.Has(scope) {
		return admin.Key{}, fmt.Errorf("admin key %q lacks the %q scope: %w", key.Name, scope, runtime.ErrForbidden)
	}
	return key, nil
}

// RequireJSON refuses a request whose Content-Type is not application/json
// (415), for handlers in other packages.
func RequireJSON(r *http.Request) error { return requireJSON(r) }

// ReadBody reads at most limit bytes of the request body (413 beyond), for
// handlers in other packages.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return readBody(w, r, limit)
}
