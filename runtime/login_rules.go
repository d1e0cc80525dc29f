package runtime

import (
	"fmt"
	"slices"
	"strings"
)

// The rules of a login that the pipeline, the token minter and live
// introspection must all apply identically live here, once: the reserved
// claim names, the scope-token and claim-value grammar, the policy query a
// login asks, the projection of a resolved authorization onto claims, and
// the required-roles gate. When two of those callers restated a rule they
// drifted (a claim the pipeline accepted made minting fail after the login
// was persisted; introspection answered with other claim names).

// reservedClaimNames is the one list of claim names no rule may set: the
// registered and protocol claims Auth0 refuses (REFERENCE.md §2), the claims
// the minter writes itself, the names RFC 7662 gives the introspection
// answer (built from the access token's payload), RFC 9701's wrapper claim
// and LoginContextClaim. A read-only table, sorted (byte order) for the
// binary search of ReservedClaim; ReservedClaims hands out copies.
var reservedClaimNames = [...]string{
	"acr", "act", "active", "amr", "at_hash", "ath", "attest", "aud", "auth_time",
	"authorization_details", "azp", "c_hash", "claimsmith_login", "client_id", "cnf", "cty", "dest",
	"entitlements", "events", "exp", "gty", "htm", "htu", "iat", "iss", "jku", "jti", "jwe", "jwk",
	"kid", "may_act", "nbf", "nonce", "org_id", "org_name", "s_hash", "scope", "sid", "sub",
	"sub_jwk", "toe", "token_introspection", "token_type", "txn", "typ", "username", "uuid", "vot",
	"vtm", "x5t#S256",
}

// maxReservedLen is the longest reserved name ("authorization_details"):
// namespaced claims, the common case on every login, are longer and skip
// the search.
const maxReservedLen = 21

// ReservedClaims returns the reserved claim names, sorted.
func ReservedClaims() []string { return slices.Clone(reservedClaimNames[:]) }

// ReservedClaim reports whether a rule may never set the claim name.
func ReservedClaim(name string) bool {
	if name == "" || len(name) > maxReservedLen {
		return false
	}
	_, found := slices.BinarySearch(reservedClaimNames[:], name)
	return found
}

// AuthzListClaim reports the claims that must be namespaced unless the
// operator allows them bare (pipeline allow_unnamespaced): an IdP may give
// bare groups/roles/permissions a meaning of its own.
func AuthzListClaim(name string) bool {
	return name == "groups" || name == "roles" || name == "permissions"
}

// ValidScope reports whether s is an RFC 6749 §3.3 scope-token
// (1*( %x21 / %x23-5B / %x5D-7E )), so it needs no JSON escaping either.
func ValidScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// ValidJSONNumber reports whether s is a JSON number literal (RFC 8259 §6).
// A json.Number claim value is written as it is, so the pipeline and the
// minter must agree on what may be written.
func ValidJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

// PolicyQuery is what a login knows when it asks the authorization store
// for a policy (runtime/authz names it authz.PolicyQuery).
type PolicyQuery struct {
	UserID   string
	ClientID string
	// Audience is the API the token is for. Roles bound to it (applicationType
	// resource_server) apply too; empty gives exactly the extension's answer.
	Audience   string
	Connection string
	// IdPGroups are the groups the IdP connection reported for the user.
	IdPGroups []string
}

// LoginQuery is the policy query of a login event.
func LoginQuery(ev *Event) PolicyQuery {
	return PolicyQuery{
		UserID:     ev.User.UserID,
		ClientID:   ev.Client.ClientID,
		Audience:   ev.Transaction.Audience,
		Connection: ev.Connection.Name,
		IdPGroups:  ev.User.Groups,
	}
}

// LoginContextClaim is the access-token claim in which the minter records
// the part of the login's policy query the token does not otherwise carry
// (connection and IdP groups), so that live introspection asks the same
// question the login asked. It is reserved: no rule can forge it.
const LoginContextClaim = "claimsmith_login"

// LoginContext is the value of LoginContextClaim.
type LoginContext struct {
	Connection string   `json:"connection,omitempty"`
	IdPGroups  []string `json:"idp_groups,omitempty"`
}

// Empty reports whether there is nothing to record.
func (c LoginContext) Empty() bool { return c.Connection == "" && len(c.IdPGroups) == 0 }

// loginContextSize is the bytes the minter's LoginContextClaim adds to the
// access token's claims object for this login (0 when it records none):
// the access-token budget counts them, since no overflow policy may drop
// what live introspection needs.
func loginContextSize(ev *Event, res *Result) int {
	if res.Authorization == nil { // the minter records it after the authorization rule only
		return 0
	}
	lc := LoginQuery(ev).Context()
	if lc.Empty() {
		return 0
	}
	groups, _ := jsonSize(nonNilList(lc.IdPGroups))
	// "claimsmith_login":{"connection":"…","idp_groups":[…]}, after a comma
	// when there are other claims.
	n := stringSize(LoginContextClaim) + len(`:{"connection":`) + stringSize(lc.Connection) + len(`,"idp_groups":`) + groups + len(`}`)
	if len(res.AccessTokenClaims) > 0 {
		n++
	}
	return n
}

// loginContextNote says, in a budget message, how much of the size is the
// login context.
func loginContextNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d of them %s: connection and IdP groups)", n, LoginContextClaim)
}

// Context is the part of q a minted access token records.
func (q PolicyQuery) Context() LoginContext {
	return LoginContext{Connection: q.Connection, IdPGroups: q.IdPGroups}
}

// TokenQuery rebuilds a login's policy query from an access token: its sub,
// client_id and aud (an aud equal to the client_id is the "no audience"
// default the minter applies) and the recorded login context.
func TokenQuery(subject, clientID string, audience []string, lc LoginContext) PolicyQuery {
	q := PolicyQuery{UserID: subject, ClientID: clientID, Connection: lc.Connection, IdPGroups: lc.IdPGroups}
	if len(audience) > 0 && audience[0] != clientID {
		q.Audience = audience[0]
	}
	return q
}

// AuthzLists switches the three authorization lists on or off.
type AuthzLists struct {
	Groups      bool `json:"groups"`
	Roles       bool `json:"roles"`
	Permissions bool `json:"permissions"`
}

// Any reports whether any list is on.
func (l AuthzLists) Any() bool { return l.Groups || l.Roles || l.Permissions }

// ClaimNames names the three list claims.
type ClaimNames struct {
	Groups      string `json:"groups"`
	Roles       string `json:"roles"`
	Permissions string `json:"permissions"`
}

// DefaultClaimNames are the list claims' names before the namespace.
func DefaultClaimNames() ClaimNames {
	return ClaimNames{Groups: "groups", Roles: "roles", Permissions: "permissions"}
}

// QualifiedClaimName puts name under the namespace unless it is a URL
// already (or there is no namespace: the operator allowed unnamespaced
// claims).
func QualifiedClaimName(namespace, name string) string {
	if strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://") {
		return name
	}
	return namespace + name
}

// Qualify returns the full claim names under namespace. A name the
// pipeline would refuse at every login (empty, or reserved once left bare)
// is a *SettingError naming the key (claims.groups, …), found at start-up.
func (n ClaimNames) Qualify(namespace string) (ClaimNames, error) {
	out := ClaimNames{
		Groups:      QualifiedClaimName(namespace, n.Groups),
		Roles:       QualifiedClaimName(namespace, n.Roles),
		Permissions: QualifiedClaimName(namespace, n.Permissions),
	}
	for _, c := range [...]struct{ key, name, full string }{
		{"claims.groups", n.Groups, out.Groups}, {"claims.roles", n.Roles, out.Roles}, {"claims.permissions", n.Permissions, out.Permissions},
	} {
		if c.name == "" {
			return ClaimNames{}, &SettingError{Key: c.key, Reason: "empty claim name"}
		}
		if err := CheckClaimName(c.key, c.full); err != nil {
			return ClaimNames{}, err
		}
	}
	return out, nil
}

// CheckClaimName refuses, at start-up, a configured claim name the
// pipeline would refuse at every login: a reserved name left bare because
// there is no namespace (allow_unnamespaced). Bare groups/roles/permissions
// are let through: the pipeline allows them exactly when there is no
// namespace.
func CheckClaimName(key, claim string) error {
	if ReservedClaim(claim) {
		return &SettingError{Key: key, Reason: fmt.Sprintf("claim %q is restricted; choose another name or configure a namespace", claim)}
	}
	return nil
}

// Projection is how a login's resolved authorization becomes token claims:
// the authorization rule applies it at login, live introspection applies it
// again to the user's current policy.
type Projection struct {
	// Names are the full claim names.
	Names ClaimNames
	// IDToken and AccessToken select the lists each token carries.
	IDToken, AccessToken AuthzLists
	// Passthrough merges what the IdP sent (user.groups; the roles and
	// permissions of an incoming event.authorization) into the lists, IdP
	// values first.
	Passthrough AuthzLists
}

// DefaultProjection is the authorization rule's default under namespace,
// with every list on the access token: what live introspection answers
// when no pipeline told it the login's projection.
func DefaultProjection(namespace string) Projection {
	n := DefaultClaimNames()
	return Projection{
		Names:       ClaimNames{Groups: namespace + n.Groups, Roles: namespace + n.Roles, Permissions: namespace + n.Permissions},
		IDToken:     AuthzLists{Groups: true, Roles: true},
		AccessToken: AuthzLists{Groups: true, Roles: true, Permissions: true},
	}
}

// Authorization combines the resolved lists with what the IdP sent, per
// Passthrough: idpGroups are the IdP connection's groups, incoming the
// event.authorization the IdP sent (nil: none). Lists are never nil.
func (p Projection) Authorization(groups, roles, permissions, idpGroups []string, incoming *Authorization) *Authorization {
	a := &Authorization{Groups: nonNilList(groups), Roles: nonNilList(roles), Permissions: nonNilList(permissions)}
	if p.Passthrough.Groups {
		a.Groups = union(idpGroups, a.Groups)
	}
	if incoming != nil {
		if p.Passthrough.Roles {
			a.Roles = union(incoming.Roles, a.Roles)
		}
		if p.Passthrough.Permissions {
			a.Permissions = union(incoming.Permissions, a.Permissions)
		}
	}
	return a
}

// Set puts the lists switched on in on onto dst under the configured names.
func (p Projection) Set(dst *Claims, on AuthzLists, a *Authorization) {
	if on.Groups {
		dst.Set(p.Names.Groups, a.Groups)
	}
	if on.Roles {
		dst.Set(p.Names.Roles, a.Roles)
	}
	if on.Permissions {
		dst.Set(p.Names.Permissions, a.Permissions)
	}
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// union returns first followed by the items of second not in first, as the
// extension's _.union did (IdP values first).
func union(first, second []string) []string {
	if len(first) == 0 {
		return second
	}
	out := make([]string, 0, len(first)+len(second))
	for _, s := range first {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range second {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// DefaultRequiredRolesKey is the client metadata key of the required-roles
// gate, as the extension's companion rule named it.
const DefaultRequiredRolesKey = "required_roles"

// RequiredRoles is the required-roles gate: when the client's metadata
// under MetadataKey lists roles (comma-separated), the user must hold at
// least one of them.
type RequiredRoles struct {
	MetadataKey string
}

// Check reports whether the client lists required roles and whether held
// satisfies them. It scans the list in place: no allocation per login.
func (r RequiredRoles) Check(metadata map[string]string, held []string) (listed, ok bool) {
	for rest := metadata[r.MetadataKey]; rest != ""; {
		var item string
		item, rest, _ = strings.Cut(rest, ",")
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		listed = true
		if slices.Contains(held, item) {
			return true, true
		}
	}
	return listed, !listed
}

// ClaimsProjector is implemented by a rule that projects the resolved
// authorization onto claims (the authorization rule), so live
// introspection can replay its projection. It is asked after provisioning.
type ClaimsProjector interface {
	Projection() Projection
}

// RolesGate is implemented by a rule that enforces required roles, so live
// introspection applies the same gate.
type RolesGate interface {
	RequiredRoles() RequiredRoles
}

// LoginRules are the rules of a configured pipeline that live
// introspection replays on the user's current policy.
type LoginRules struct {
	// Projection is the (last) authorization rule's; nil when the pipeline
	// has none.
	Projection *Projection
	// Gates are the pipeline's required-roles gates, in order.
	Gates []RequiredRoles
}

// DefaultLoginRules are what live introspection applies when no pipeline
// told it the login's rules (e.g. `claimsmith token introspect` without a
// hooks section): every list under namespace with the default names, and
// the default required_roles gate.
func DefaultLoginRules(namespace string) LoginRules {
	p := DefaultProjection(namespace)
	return LoginRules{Projection: &p, Gates: []RequiredRoles{{MetadataKey: DefaultRequiredRolesKey}}}
}
