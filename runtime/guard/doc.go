// Package guard is the enforcement side of claimsmith: a library for Go
// resource servers (net/http middleware and plain functions) that verifies
// bearer tokens — from claimsmith or any OIDC issuer — and decides access.
//
//   - Authentication: a JWT verifier fed by OIDC discovery and a JWKS cache
//     (refetched on an unknown kid, rate limited), strict RFC 9068 for access
//     tokens, or RFC 7662 introspection (cached until the token's exp); a
//     token carrying `<namespace>authz_overflow` is introspected for the full
//     set. Verified principals are cached for a bounded time, so a revocation
//     takes effect within that bound.
//   - Claim paths: groups, roles, permissions and scopes are read from
//     configured dotted paths and namespaced URLs, so claimsmith tokens,
//     Hydra's `ext.` claims and Keycloak's `realm_access.roles` all work.
//   - A Principal in the request context with HasRole, HasPermission, InGroup
//     and HasScope (any-of, and All variants), and RequireAuth returning typed
//     errors: *AuthError (401, WWW-Authenticate: Bearer with RFC 6750 codes)
//     or *ForbiddenError (403).
//   - Path rules (the `authorized` add-on): ordered, first match wins,
//     `*`/`**` segments, methods, allowed groups/roles/permissions/scopes,
//     denied roles, login_url redirects with a returnUrl cookie, login pages
//     for SPAs and forbidden pages.
//   - Per-route metadata with voters (LoopBack): allowed/denied roles, scopes,
//     resource, voter funcs, global authorizers (Casbin in casbinvoter,
//     WebAssembly) and
//     skip, settled by runtime.Matrix — the decision matrix the login
//     pipeline uses.
//   - Field-level helpers: JSON field filters by permission and per-field
//     rules for GraphQL resolvers.
//
// One place turns outcomes and errors into HTTP responses: Guard.Write and
// WriteError.
package guard
