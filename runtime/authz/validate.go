package authz

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/runtime"
)

// Limits of the extension's API schemas (server/api/*/schemas): names and
// mapping fields are counted in UTF-16 code units, as JavaScript counts them.
const (
	MaxGroupName       = 50
	MaxRoleName        = 50
	MaxPermissionName  = 100
	MaxMappingField    = 50
	MaxDescription     = 500
	MaxApplicationID   = 500
	MaxApplicationName = 200
	// MaxIDBytes caps every id that enters the model or the profile store
	// (group, role, permission, mapping and configuration _ids, user ids,
	// client ids): the one limit runtime.CheckID applies where login events
	// enter, so an id a hook accepts can always be stored.
	MaxIDBytes = runtime.MaxIDLength
	// DefaultProfileLimit caps each of a profile's app_metadata and
	// user_metadata objects (encoded JSON bytes).
	DefaultProfileLimit = 16 << 10
)

// jsLen is the length JavaScript reports for s (UTF-16 code units), so a name
// the extension accepts is accepted here and vice versa.
func jsLen(s string) int {
	n := 0
	for _, r := range s {
		if utf16.RuneLen(r) == 2 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func invalid(entity, id, field, format string, args ...any) error {
	return &runtime.ValidationError{Entity: entity, ID: id, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// CheckID is the one check of an id entering claimsmith from outside (admin
// paths and bodies, the CLI, import, and the IdP hooks' user ids): it must
// be non-empty, valid UTF-8 (the JSON stores would otherwise rewrite a bad
// byte to U+FFFD, so a grant would silently move to another id) and at most
// MaxIDBytes long. The error is a *runtime.ValidationError naming entity and
// field; it never echoes the id, which may be huge or binary.
func CheckID(entity, field, v string) error { return checkID(entity, "", field, v) }

func checkID(entity, id, field, v string) error {
	switch {
	case v == "":
		return invalid(entity, id, field, "is empty")
	case len(v) > MaxIDBytes:
		return invalid(entity, id, field, "is %d bytes long, at most %d bytes are allowed", len(v), MaxIDBytes)
	case !utf8.ValidString(v):
		return invalid(entity, id, field, "is not valid UTF-8")
	}
	return nil
}

// shownID is id for an error message: an id that failed CheckID is named by
// its position instead.
func shownID(id string, idx int) string {
	if id == "" || len(id) > MaxIDBytes || !utf8.ValidString(id) {
		return fmt.Sprintf("#%d", idx)
	}
	return id
}

func checkLen(entity, id, field, v string, min, max int) error {
	if !utf8.ValidString(v) {
		return invalid(entity, id, field, "is not valid UTF-8")
	}
	n := jsLen(v)
	if n < min || n > max {
		if min > 0 && n == 0 {
			return invalid(entity, id, field, "is required (%d–%d characters)", min, max)
		}
		return invalid(entity, id, field, "has %d characters, must be %d–%d", n, min, max)
	}
	return nil
}

func checkAppType(entity, id, v string, required bool) error {
	switch v {
	case TypeClient, TypeResourceServer:
		return nil
	case "":
		if !required {
			return nil
		}
	}
	return invalid(entity, id, "applicationType", "is %q, must be %q or %q", v, TypeClient, TypeResourceServer)
}

// checkIDs applies CheckID to a list of ids or user ids.
func checkIDs(entity, id, field string, ids []string) error {
	for i, v := range ids {
		if err := checkID(entity, id, fmt.Sprintf("%s[%d]", field, i), v); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks doc as import does: every entity has a non-empty _id unique
// among its type, names and mapping fields have the extension's lengths,
// applicationType is client or resource_server, and id lists hold no empty
// strings. It deliberately accepts what real extension data contains and the
// resolver handles: duplicate group or role names, dangling ids and nesting
// cycles. The error is a *runtime.ValidationError naming entity, _id, field.
func (d *Document) Validate() error {
	seen := make(map[string]struct{}, len(d.Groups)+len(d.Roles)+len(d.Permissions))
	uniq := func(entity string, idx int, id string) error {
		if id == "" {
			return invalid(entity, fmt.Sprintf("#%d", idx), "_id", "is required")
		}
		if err := checkID(entity, shownID(id, idx), "_id", id); err != nil {
			return err
		}
		k := entity + "\x00" + id
		if _, dup := seen[k]; dup {
			return invalid(entity, id, "_id", "is used by another %s", entity)
		}
		seen[k] = struct{}{}
		return nil
	}
	for i := range d.Configuration {
		c := &d.Configuration[i]
		if err := uniq("configuration", i, c.ID); err != nil {
			return err
		}
	}
	for i := range d.Groups {
		g := &d.Groups[i]
		if err := uniq("group", i, g.ID); err != nil {
			return err
		}
		if err := g.validate(); err != nil {
			return err
		}
		mseen := map[string]struct{}{}
		for j := range g.Mappings {
			m := &g.Mappings[j]
			if err := checkID("group", g.ID, fmt.Sprintf("mappings[%d]._id", j), m.ID); err != nil {
				return err
			}
			if _, dup := mseen[m.ID]; dup {
				return invalid("group", g.ID, fmt.Sprintf("mappings[%d]._id", j), "%q is used by another mapping of the group", m.ID)
			}
			mseen[m.ID] = struct{}{}
			if err := m.validate(g.ID, j); err != nil {
				return err
			}
		}
	}
	for i := range d.Roles {
		r := &d.Roles[i]
		if err := uniq("role", i, r.ID); err != nil {
			return err
		}
		if err := r.validate(false); err != nil {
			return err
		}
	}
	for i := range d.Permissions {
		p := &d.Permissions[i]
		if err := uniq("permission", i, p.ID); err != nil {
			return err
		}
		if err := p.validate(false); err != nil {
			return err
		}
	}
	if d.Claimsmith != nil {
		for i := range d.Claimsmith.Applications {
			a := &d.Claimsmith.Applications[i]
			if err := uniq("application", i, a.ClientID); err != nil {
				return err
			}
			if err := a.validate(); err != nil {
				return err
			}
		}
		for i := range d.Claimsmith.Profiles {
			p := &d.Claimsmith.Profiles[i]
			if err := uniq("profile", i, p.UserID); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *Group) validate() error {
	if err := checkLen("group", g.ID, "name", g.Name, 1, MaxGroupName); err != nil {
		return err
	}
	if err := checkLen("group", g.ID, "description", g.Description, 0, MaxDescription); err != nil {
		return err
	}
	if err := checkIDs("group", g.ID, "members", g.Members); err != nil {
		return err
	}
	if err := checkIDs("group", g.ID, "roles", g.Roles); err != nil {
		return err
	}
	return checkIDs("group", g.ID, "nested", g.Nested)
}

func (m *Mapping) validate(groupID string, j int) error {
	if err := checkLen("group", groupID, fmt.Sprintf("mappings[%d].groupName", j), m.GroupName, 1, MaxMappingField); err != nil {
		return err
	}
	return checkLen("group", groupID, fmt.Sprintf("mappings[%d].connectionName", j), m.ConnectionName, 1, MaxMappingField)
}

// validate checks a role; created roles must carry an applicationType, while
// imported ones may predate it.
func (r *Role) validate(strict bool) error {
	if err := checkLen("role", r.ID, "name", r.Name, 1, MaxRoleName); err != nil {
		return err
	}
	if err := checkLen("role", r.ID, "description", r.Description, 0, MaxDescription); err != nil {
		return err
	}
	if err := checkAppType("role", r.ID, r.ApplicationType, strict); err != nil {
		return err
	}
	if err := checkLen("role", r.ID, "applicationId", r.ApplicationID, 1, MaxApplicationID); err != nil {
		return err
	}
	if err := checkIDs("role", r.ID, "permissions", r.Permissions); err != nil {
		return err
	}
	return checkIDs("role", r.ID, "users", r.Users)
}

func (p *Permission) validate(strict bool) error {
	if err := checkLen("permission", p.ID, "name", p.Name, 1, MaxPermissionName); err != nil {
		return err
	}
	if err := checkLen("permission", p.ID, "description", p.Description, 0, MaxDescription); err != nil {
		return err
	}
	if err := checkAppType("permission", p.ID, p.ApplicationType, strict); err != nil {
		return err
	}
	if strict || p.ApplicationID != "" {
		return checkLen("permission", p.ID, "applicationId", p.ApplicationID, 1, MaxApplicationID)
	}
	return nil
}

func (a *Application) validate() error {
	if err := checkID("application", shownID(a.ClientID, 0), "client_id", a.ClientID); err != nil {
		return err
	}
	if err := checkLen("application", a.ClientID, "client_id", a.ClientID, 1, MaxApplicationID); err != nil {
		return err
	}
	if err := checkLen("application", a.ClientID, "name", a.Name, 0, MaxApplicationName); err != nil {
		return err
	}
	for k := range a.Metadata {
		if strings.TrimSpace(k) == "" {
			return invalid("application", a.ClientID, "metadata", "has an empty key")
		}
	}
	return nil
}
