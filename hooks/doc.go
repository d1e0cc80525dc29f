// Package hooks is claimsmith's HTTP platform: the server and its route
// table, the one body limit (LimitBody, ReadBody), the one place errors
// become HTTP responses (StatusOf, WriteError), request metrics labelled by
// the route's caller family, configuration reload, and the shared
// credential checks (KeySet, bearer and admin keys).
//
// The endpoints live in subpackages by job: hooks/login (the IdP dialects
// behind one Dialect interface and one Handler), hooks/oauth
// (introspection, revocation, JWKS, discovery) and the admin API; their
// end-to-end tests are in hooks/e2e. Handlers depend on tiny interfaces,
// never on concrete backends; the composition root wires them.
package hooks
