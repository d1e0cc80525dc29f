// Package authz is claimsmith's authorization model: the Auth0 Authorization
// Extension's document (groups with members, nested children, roles and
// IdP-group mappings; roles per application with permissions and directly
// assigned users; permissions; the configuration record) plus the
// applications and user profiles claimsmith keeps itself.
//
// Document is the import/export format (ParseDocument, Encode). Model is an
// immutable, indexed snapshot of one revision whose Resolve answers a login
// exactly as the extension's policy endpoint does, at a cost that depends on
// the user's own memberships only. Changes are Ops applied atomically by a
// Store (Writer.Apply, with optimistic revision checks); backends live in
// subpackages (memory, file) and pass the authztest conformance suite.
package authz
