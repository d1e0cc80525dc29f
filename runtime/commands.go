package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Vote is a rule's say on access. The zero value abstains.
type Vote uint8

// Votes, as in LoopBack's decision matrix.
const (
	Abstain Vote = iota
	Allow
	Deny
)

func (v Vote) String() string {
	switch v {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	default:
		return "abstain"
	}
}

// MarshalText encodes the vote as "allow", "deny" or "abstain".
func (v Vote) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText accepts "allow", "deny", "abstain" or "" (abstain).
func (v *Vote) UnmarshalText(b []byte) error {
	switch string(b) {
	case "allow":
		*v = Allow
	case "deny":
		*v = Deny
	case "abstain", "":
		*v = Abstain
	default:
		return fmt.Errorf("%w: vote %q is not one of allow, deny, abstain", ErrInvalid, b)
	}
	return nil
}

// OAuth error codes a deny can carry. Auth0 maps UnauthorizedError to
// "unauthorized" and every other failure to "access_denied".
const (
	CodeAccessDenied = "access_denied"
	CodeUnauthorized = "unauthorized"
)

// Claim is one custom claim: a name and a JSON-encodable value.
type Claim struct {
	Name  string
	Value any
}

// Claims is an ordered set of custom claims. Setting a name twice keeps the
// first position and the last value, so output is deterministic without maps.
// It encodes as a JSON object.
type Claims []Claim

// Set adds or replaces a claim.
func (c *Claims) Set(name string, value any) {
	for i := range *c {
		if (*c)[i].Name == name {
			(*c)[i].Value = value
			return
		}
	}
	*c = append(*c, Claim{Name: name, Value: value})
}

// Get returns the value of a claim and whether it is set.
func (c Claims) Get(name string) (any, bool) {
	for i := range c {
		if c[i].Name == name {
			return c[i].Value, true
		}
	}
	return nil, false
}

// Delete removes a claim if present.
func (c *Claims) Delete(name string) {
	for i := range *c {
		if (*c)[i].Name == name {
			*c = append((*c)[:i], (*c)[i+1:]...)
			return
		}
	}
}

// MarshalJSON encodes the claims as one JSON object in their order.
func (c Claims) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, cl := range c {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(cl.Name)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(cl.Value)
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", cl.Name, err)
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON decodes a JSON object, keeping the order of its keys.
func (c *Claims) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*c = nil
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%w: claims must be a JSON object", ErrInvalid)
	}
	out := (*c)[:0]
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := kt.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("claim %q: %w", name, err)
		}
		out.Set(name, v)
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*c = out
	return nil
}

// TokenCommands are a rule's changes to one token.
type TokenCommands struct {
	Claims       Claims   `json:"claims,omitempty"`
	AddScopes    []string `json:"add_scopes,omitempty"`
	RemoveScopes []string `json:"remove_scopes,omitempty"`
}

// Access is a rule's vote with, for a deny, the reason and OAuth error code.
type Access struct {
	Vote   Vote   `json:"vote"`
	Reason string `json:"reason,omitempty"`
	Code   string `json:"code,omitempty"`
}

// LogLine is one line a rule logged. Kept in the trace, never in a token.
type LogLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
}

// Commands are what one rule answers with, as Actions' api object records
// them. This is also the JSON a WebAssembly rule returns (see
// samples/rules/README.md). Scope commands are only valid on the access token.
type Commands struct {
	IDToken      TokenCommands  `json:"id_token"`
	AccessToken  TokenCommands  `json:"access_token"`
	AppMetadata  map[string]any `json:"app_metadata,omitempty"`
	UserMetadata map[string]any `json:"user_metadata,omitempty"`
	Access       Access         `json:"access"`
	Log          []LogLine      `json:"log,omitempty"`
	// Authorization is set by the built-in authorization rule only; the
	// pipeline copies it into Event.Authorization for later rules.
	Authorization *Authorization `json:"-"`
}

// Reset clears c for reuse, keeping allocated capacity.
func (c *Commands) Reset() {
	c.IDToken.Claims = c.IDToken.Claims[:0]
	c.IDToken.AddScopes = c.IDToken.AddScopes[:0]
	c.IDToken.RemoveScopes = c.IDToken.RemoveScopes[:0]
	c.AccessToken.Claims = c.AccessToken.Claims[:0]
	c.AccessToken.AddScopes = c.AccessToken.AddScopes[:0]
	c.AccessToken.RemoveScopes = c.AccessToken.RemoveScopes[:0]
	c.AppMetadata = nil
	c.UserMetadata = nil
	c.Access = Access{}
	c.Log = c.Log[:0]
	c.Authorization = nil
}

// Deny records a deny vote with a reason and an OAuth error code
// (CodeAccessDenied when code is empty).
func (c *Commands) Deny(reason, code string) {
	if code == "" {
		code = CodeAccessDenied
	}
	c.Access = Access{Vote: Deny, Reason: reason, Code: code}
}

// Logf appends a log line to the rule's trace.
func (c *Commands) Logf(level, format string, args ...any) {
	c.Log = append(c.Log, LogLine{Level: level, Msg: fmt.Sprintf(format, args...)})
}
