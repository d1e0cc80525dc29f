package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Host is what claimsmith offers a running rule besides the event: its own
// configuration and read-only look-ups in the authorization store. Run wires
// the real host functions; unit tests on the host pass their own.
type Host interface {
	// Config returns the rule's configuration value for key.
	Config(key string) (string, bool)
	// IsMember reports whether user is in group (directly, through nesting
	// or a connection mapping).
	IsMember(user, group string) (bool, error)
	// UserPolicy returns the groups, roles and permissions of user for client.
	UserPolicy(user, client string) (Authorization, error)
	// Log writes a line to the host's log right away (it survives a crash of
	// the rule, unlike API.Log, which is returned with the commands).
	Log(level, msg string)
}

// Func is a rule: it reads the event and records its commands in api. A
// returned error fails the rule (the operator's on_error decides what that
// means for the login); use api.Access.Deny to refuse a login on purpose.
type Func func(ev *Event, api *API) error

// API is what a rule records, mirroring Auth0 Actions' api object.
type API struct {
	IDToken     Token
	AccessToken AccessToken
	Access      Access
	User        UserAPI
	// Host gives the rule its configuration and authorization look-ups.
	Host Host
	log  []logLine
}

// Log adds a line to the rule's trace (shown by `claimsmith test`, never put
// into a token). level is debug, info, warn or error.
func (a *API) Log(level, format string, args ...any) {
	a.log = append(a.log, logLine{Level: level, Msg: fmt.Sprintf(format, args...)})
}

// Token collects custom claims for one token.
type Token struct {
	claims []claim
}

// SetCustomClaim sets a claim on the token. Restricted names (iss, sub, aud,
// exp, …) and un-namespaced groups/roles/permissions are refused by the host
// and fail the rule. Setting a name twice keeps the last value.
func (t *Token) SetCustomClaim(name string, value any) {
	for i := range t.claims {
		if t.claims[i].name == name {
			t.claims[i].value = value
			return
		}
	}
	t.claims = append(t.claims, claim{name: name, value: value})
}

// AccessToken collects custom claims and scope changes for the access token.
type AccessToken struct {
	Token
	add, remove []string
}

// AddScope adds a scope to the access token.
func (t *AccessToken) AddScope(scope string) { t.add = append(t.add, scope) }

// RemoveScope removes a scope from the access token.
func (t *AccessToken) RemoveScope(scope string) { t.remove = append(t.remove, scope) }

// OAuth error codes of a deny.
const (
	CodeAccessDenied = "access_denied"
	CodeUnauthorized = "unauthorized"
)

// Access records the rule's vote. A rule that never calls it abstains.
type Access struct {
	vote, reason, code string
}

// Deny refuses the login with reason and the OAuth error access_denied.
func (a *Access) Deny(reason string) { a.DenyWithCode(CodeAccessDenied, reason) }

// DenyWithCode refuses the login with reason and an OAuth error code
// (access_denied or unauthorized, as Auth0's UnauthorizedError).
func (a *Access) DenyWithCode(code, reason string) {
	a.vote, a.code, a.reason = "deny", code, reason
}

// Allow votes for the login (it matters only when the operator's decision
// matrix defaults to deny). A later Deny replaces it.
func (a *Access) Allow() {
	if a.vote != "deny" {
		a.vote = "allow"
	}
}

// UserAPI records metadata changes. Keys merge into the stored objects; a nil
// value deletes the key (JSON merge patch).
type UserAPI struct {
	app, user []claim
}

// SetAppMetadata merges key into the user's app_metadata.
func (u *UserAPI) SetAppMetadata(key string, value any) { setKV(&u.app, key, value) }

// SetUserMetadata merges key into the user's user_metadata.
func (u *UserAPI) SetUserMetadata(key string, value any) { setKV(&u.user, key, value) }

type claim struct {
	name  string
	value any
}

func setKV(list *[]claim, key string, value any) {
	for i := range *list {
		if (*list)[i].name == key {
			(*list)[i].value = value
			return
		}
	}
	*list = append(*list, claim{name: key, value: value})
}

type logLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
}

// Handle runs rule on one JSON event and returns the JSON commands: the whole
// ABI of a claimsmith rule. Run calls it with the extism input; tests call it
// directly. The event is decoded strictly enough to catch a wrong type, but
// unknown fields are ignored so newer hosts can add fields.
func Handle(input []byte, host Host, rule Func) ([]byte, error) {
	var ev Event
	if err := json.Unmarshal(input, &ev); err != nil {
		return nil, fmt.Errorf("sdk: decoding the event: %w", err)
	}
	if host == nil {
		host = noHost{}
	}
	api := API{Host: host}
	if err := rule(&ev, &api); err != nil {
		return nil, err
	}
	return api.encode()
}

// encode writes the commands JSON by hand: claim order is kept, and nothing
// is built as map[string]any.
func (a *API) encode() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(256)
	b.WriteString(`{"id_token":{"claims":`)
	if err := writeObject(&b, a.IDToken.claims); err != nil {
		return nil, fmt.Errorf("sdk: id_token claim %w", err)
	}
	b.WriteString(`},"access_token":{"claims":`)
	if err := writeObject(&b, a.AccessToken.claims); err != nil {
		return nil, fmt.Errorf("sdk: access_token claim %w", err)
	}
	if err := writeField(&b, "add_scopes", a.AccessToken.add); err != nil {
		return nil, err
	}
	if err := writeField(&b, "remove_scopes", a.AccessToken.remove); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	if len(a.User.app) > 0 {
		b.WriteString(`,"app_metadata":`)
		if err := writeObject(&b, a.User.app); err != nil {
			return nil, fmt.Errorf("sdk: app_metadata key %w", err)
		}
	}
	if len(a.User.user) > 0 {
		b.WriteString(`,"user_metadata":`)
		if err := writeObject(&b, a.User.user); err != nil {
			return nil, fmt.Errorf("sdk: user_metadata key %w", err)
		}
	}
	if a.Access.vote != "" {
		acc := struct {
			Vote   string `json:"vote"`
			Reason string `json:"reason,omitempty"`
			Code   string `json:"code,omitempty"`
		}{a.Access.vote, a.Access.reason, a.Access.code}
		if err := writeField(&b, "access", acc); err != nil {
			return nil, err
		}
	}
	if len(a.log) > 0 {
		if err := writeField(&b, "log", a.log); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeField(b *bytes.Buffer, name string, v any) error {
	switch t := v.(type) {
	case []string:
		if len(t) == 0 {
			return nil
		}
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sdk: %s: %w", name, err)
	}
	b.WriteString(`,"`)
	b.WriteString(name)
	b.WriteString(`":`)
	b.Write(enc)
	return nil
}

func writeObject(b *bytes.Buffer, kv []claim) error {
	b.WriteByte('{')
	for i, c := range kv {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(c.name)
		if err != nil {
			return fmt.Errorf("%q: %w", c.name, err)
		}
		v, err := json.Marshal(c.value)
		if err != nil {
			return fmt.Errorf("%q: %w", c.name, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return nil
}

// rawKey decodes obj[key] into v without decoding the other keys' values.
func rawKey(obj json.RawMessage, what, key string, v any) (bool, error) {
	if len(obj) == 0 || bytes.Equal(obj, []byte("null")) {
		return false, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return false, fmt.Errorf("sdk: %s is not a JSON object: %w", what, err)
	}
	raw, ok := m[key]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("sdk: %s[%q]: %w", what, key, err)
	}
	return true, nil
}

// ErrNoHost is returned by the look-ups of a rule run without a host (for
// example Handle called with a nil Host in a test).
var ErrNoHost = errors.New("sdk: no host functions available")

type noHost struct{}

func (noHost) Config(string) (string, bool)                     { return "", false }
func (noHost) IsMember(string, string) (bool, error)            { return false, ErrNoHost }
func (noHost) UserPolicy(string, string) (Authorization, error) { return Authorization{}, ErrNoHost }
func (noHost) Log(string, string)                               {}
