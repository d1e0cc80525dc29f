package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Application types of roles and permissions, as in the extension.
const (
	TypeClient         = "client"
	TypeResourceServer = "resource_server"
)

// Document is the Auth0 Authorization Extension's JSON document, the format of
// its export and import: top-level configuration, groups, roles, permissions.
// Legacy top-level applications and rules are accepted and ignored. Claimsmith
// holds what the extension left to Auth0 in an optional "claimsmith" section
// (written by `export --full` only), so the default export stays exactly the
// extension's.
type Document struct {
	Configuration []Configuration `json:"configuration"`
	Groups        []Group         `json:"groups"`
	Roles         []Role          `json:"roles"`
	Permissions   []Permission    `json:"permissions"`
	Claimsmith    *Section        `json:"claimsmith,omitempty"`
}

// Section is claimsmith's own data: applications and, in full exports, user
// profiles.
type Section struct {
	Applications []Application   `json:"applications,omitempty"`
	Profiles     []ProfileRecord `json:"profiles,omitempty"`
}

// ProfileRecord is a stored user profile in a full export.
type ProfileRecord struct {
	UserID       string         `json:"user_id"`
	AppMetadata  map[string]any `json:"app_metadata,omitempty"`
	UserMetadata map[string]any `json:"user_metadata,omitempty"`
}

// Group is a set of users and nested child groups that carries roles.
type Group struct {
	ID          string    `json:"_id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Members     []string  `json:"members,omitempty"`
	Roles       []string  `json:"roles,omitempty"`
	Nested      []string  `json:"nested,omitempty"` // ids of CHILD groups
	Mappings    []Mapping `json:"mappings,omitempty"`
	Extra       Extra     `json:"-"`
}

// Mapping puts users whose IdP connection reports GroupName into the group.
type Mapping struct {
	ID             string `json:"_id"`
	GroupName      string `json:"groupName"`
	ConnectionName string `json:"connectionName"`
	Extra          Extra  `json:"-"`
}

// Role belongs to one application (a client_id, or an API audience when
// ApplicationType is resource_server) and grants permissions.
type Role struct {
	ID              string   `json:"_id"`
	Name            string   `json:"name"`
	Description     string   `json:"description,omitempty"`
	ApplicationType string   `json:"applicationType,omitempty"`
	ApplicationID   string   `json:"applicationId"`
	Permissions     []string `json:"permissions,omitempty"`
	Users           []string `json:"users,omitempty"` // directly assigned user ids
	Extra           Extra    `json:"-"`
}

// Permission belongs to one application.
type Permission struct {
	ID              string `json:"_id"`
	Name            string `json:"name"`
	Description     string `json:"description,omitempty"`
	ApplicationType string `json:"applicationType,omitempty"`
	ApplicationID   string `json:"applicationId,omitempty"`
	Extra           Extra  `json:"-"`
}

// Configuration is the extension's settings record (_id "v1"). Booleans are
// pointers so an absent key stays absent on export.
type Configuration struct {
	ID                     string `json:"_id"`
	GroupsInToken          *bool  `json:"groupsInToken,omitempty"`
	RolesInToken           *bool  `json:"rolesInToken,omitempty"`
	PermissionsInToken     *bool  `json:"permissionsInToken,omitempty"`
	PersistGroups          *bool  `json:"persistGroups,omitempty"`
	PersistRoles           *bool  `json:"persistRoles,omitempty"`
	PersistPermissions     *bool  `json:"persistPermissions,omitempty"`
	GroupsPassthrough      *bool  `json:"groupsPassthrough,omitempty"`
	RolesPassthrough       *bool  `json:"rolesPassthrough,omitempty"`
	PermissionsPassthrough *bool  `json:"permissionsPassthrough,omitempty"`
	APIKey                 string `json:"apikey,omitempty"`
	Extra                  Extra  `json:"-"`
}

// Application is a client claimsmith knows: its name and string metadata
// (such as required_roles), which the extension left to Auth0.
type Application struct {
	ClientID string            `json:"client_id"`
	Name     string            `json:"name,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// OAuth, when set, registers the application as a client of
	// claimsmith's token endpoint (POST /oauth2/token); runtime/admin
	// manages it (clients create/rotate/delete), runtime/exchange reads it.
	OAuth *OAuthClient `json:"oauth,omitempty"`
}

// OAuthClient is an application's registration at the token endpoint. The
// secret is kept only as its hash ("sha256:<hex>" of a generated secret,
// the form of token.HashSecret); the hash is never shown by the admin API
// (Redacted), only carried by full exports, which are backups.
type OAuthClient struct {
	// AuthMethod is client_secret_basic, client_secret_post or
	// private_key_jwt (RFC 7591 token_endpoint_auth_method).
	AuthMethod string   `json:"token_endpoint_auth_method"`
	SecretHash string   `json:"secret_hash,omitempty"`
	GrantTypes []string `json:"grant_types"`
	Audiences  []string `json:"audiences,omitempty"`
	Scopes     []string `json:"scopes,omitempty"`
	Issuers    []string `json:"issuers,omitempty"`
	// JWKS is the client's public key set for private_key_jwt.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// SecretSet is when the current secret was made (create or rotate).
	SecretSet time.Time `json:"secret_set,omitzero"`
}

// Redacted returns a without its client secret's hash: what the admin API
// shows and audits.
func (a Application) Redacted() Application {
	if a.OAuth != nil && a.OAuth.SecretHash != "" {
		o := *a.OAuth
		o.SecretHash = ""
		a.OAuth = &o
	}
	return a
}

// Extra keeps an entity's keys claimsmith does not model, verbatim, so an
// export taken from the extension (whose versions added fields over time)
// round-trips unchanged.
type Extra map[string]json.RawMessage

// The entity types decode their known fields and keep the rest in Extra.
type (
	groupAlias      Group
	mappingAlias    Mapping
	roleAlias       Role
	permissionAlias Permission
	configAlias     Configuration
)

var (
	groupKeys      = keySet("_id", "name", "description", "members", "roles", "nested", "mappings")
	mappingKeys    = keySet("_id", "groupName", "connectionName")
	roleKeys       = keySet("_id", "name", "description", "applicationType", "applicationId", "permissions", "users")
	permissionKeys = keySet("_id", "name", "description", "applicationType", "applicationId")
	configKeys     = keySet("_id", "groupsInToken", "rolesInToken", "permissionsInToken", "persistGroups", "persistRoles",
		"persistPermissions", "groupsPassthrough", "rolesPassthrough", "permissionsPassthrough", "apikey")
)

func keySet(keys ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		m[k] = struct{}{}
	}
	return m
}

// UnmarshalJSON implements json.Unmarshaler.
func (g *Group) UnmarshalJSON(b []byte) error {
	return decodeWithExtra(b, (*groupAlias)(g), groupKeys, &g.Extra)
}

// MarshalJSON implements json.Marshaler.
func (g Group) MarshalJSON() ([]byte, error) { return encodeWithExtra(groupAlias(g), g.Extra) }

// UnmarshalJSON implements json.Unmarshaler.
func (m *Mapping) UnmarshalJSON(b []byte) error {
	return decodeWithExtra(b, (*mappingAlias)(m), mappingKeys, &m.Extra)
}

// MarshalJSON implements json.Marshaler.
func (m Mapping) MarshalJSON() ([]byte, error) { return encodeWithExtra(mappingAlias(m), m.Extra) }

// UnmarshalJSON implements json.Unmarshaler.
func (r *Role) UnmarshalJSON(b []byte) error {
	return decodeWithExtra(b, (*roleAlias)(r), roleKeys, &r.Extra)
}

// MarshalJSON implements json.Marshaler.
func (r Role) MarshalJSON() ([]byte, error) { return encodeWithExtra(roleAlias(r), r.Extra) }

// UnmarshalJSON implements json.Unmarshaler.
func (p *Permission) UnmarshalJSON(b []byte) error {
	return decodeWithExtra(b, (*permissionAlias)(p), permissionKeys, &p.Extra)
}

// MarshalJSON implements json.Marshaler.
func (p Permission) MarshalJSON() ([]byte, error) {
	return encodeWithExtra(permissionAlias(p), p.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *Configuration) UnmarshalJSON(b []byte) error {
	return decodeWithExtra(b, (*configAlias)(c), configKeys, &c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c Configuration) MarshalJSON() ([]byte, error) {
	return encodeWithExtra(configAlias(c), c.Extra)
}

func decodeWithExtra(b []byte, known any, keys map[string]struct{}, extra *Extra) error {
	// Fast path: entities rarely carry unknown keys, so one strict decode
	// usually suffices; only an unknown key pays for the second pass.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(known)
	if err == nil {
		*extra = nil
		return nil
	}
	if !strings.HasPrefix(err.Error(), "json: unknown field ") {
		return err
	}
	if err := json.Unmarshal(b, known); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*extra = nil
	for k, v := range all {
		if _, ok := keys[k]; ok {
			continue
		}
		if *extra == nil {
			*extra = Extra{}
		}
		(*extra)[k] = v
	}
	return nil
}

func encodeWithExtra(known any, extra Extra) ([]byte, error) {
	b, err := json.Marshal(known)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1])
	for _, k := range keys {
		if len(b) > 2 || buf.Len() > 1 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		var compact bytes.Buffer
		if err := json.Compact(&compact, extra[k]); err != nil {
			return nil, fmt.Errorf("extra key %q: %w", k, err)
		}
		buf.Write(compact.Bytes())
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
