package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkOutput refuses commands a rule may not give. Nothing of a refused
// rule's commands is applied.
func (p *Pipeline) checkOutput(out *Commands) error {
	if err := p.checkClaims("id_token", out.IDToken.Claims); err != nil {
		return err
	}
	if err := p.checkClaims("access_token", out.AccessToken.Claims); err != nil {
		return err
	}
	if len(out.IDToken.AddScopes) > 0 || len(out.IDToken.RemoveScopes) > 0 {
		return errors.New("bad output: scopes can only be changed on the access token")
	}
	for _, list := range [][]string{out.AccessToken.AddScopes, out.AccessToken.RemoveScopes} {
		for _, s := range list {
			if !ValidScope(s) {
				return fmt.Errorf("bad output: scope %q is not a scope token (RFC 6749 §3.3)", s)
			}
		}
	}
	if _, err := jsonSize(out.AppMetadata); err != nil {
		return fmt.Errorf("bad output: app_metadata: %w", err)
	}
	if _, err := jsonSize(out.UserMetadata); err != nil {
		return fmt.Errorf("bad output: user_metadata: %w", err)
	}
	a := &out.Access
	switch a.Vote {
	case Deny:
		switch a.Code {
		case "":
			a.Code = CodeAccessDenied
		case CodeAccessDenied, CodeUnauthorized:
		default:
			return fmt.Errorf("bad output: deny code %q is not one of access_denied, unauthorized", a.Code)
		}
		if a.Reason == "" {
			a.Reason = "access denied"
		}
	case Allow, Abstain:
	default:
		return fmt.Errorf("bad output: vote %d is not allow, deny or abstain", a.Vote)
	}
	return nil
}

func (p *Pipeline) checkClaims(token string, claims Claims) error {
	for _, c := range claims {
		switch {
		case c.Name == "":
			return fmt.Errorf("bad output: %s claim with an empty name", token)
		case AuthzListClaim(c.Name) && !p.allowUnnamespaced:
			return fmt.Errorf("%s claim %q must be namespaced (%s%s) unless allow_unnamespaced is set", token, c.Name, p.namespace, c.Name)
		case ReservedClaim(c.Name):
			return fmt.Errorf("%s claim %q is restricted and cannot be set by a rule", token, c.Name)
		case c.Name == p.overflowClaim:
			return fmt.Errorf("%s claim %q is set by the pipeline only", token, c.Name)
		}
		if _, err := jsonSize(c.Value); err != nil {
			return fmt.Errorf("bad output: %s claim %q: %w", token, c.Name, err)
		}
	}
	return nil
}

// enforceBudget applies the overflow policy to each token whose custom
// claims exceed their byte budget. A list is dropped whole, never
// truncated, and the overflow claim says so; what still does not fit denies.
// atExtra is what the minter adds to the access token's claims
// (loginContextSize).
func (p *Pipeline) enforceBudget(res *Result, atExtra int) {
	tokens := [...]struct {
		name   string
		claims *Claims
		budget int
		extra  int
	}{
		{"id_token", &res.IDTokenClaims, p.idBudget, 0},
		{"access_token", &res.AccessTokenClaims, p.atBudget, atExtra},
	}
	for _, t := range tokens {
		if t.budget < 0 || len(*t.claims) == 0 && t.extra == 0 {
			continue
		}
		size := claimsSize(*t.claims) + t.extra
		if size <= t.budget {
			continue
		}
		before := size
		var dropped []string
		if !p.overflowDeny {
			for _, name := range p.drop {
				if _, ok := t.claims.Get(name); !ok {
					continue
				}
				t.claims.Delete(name)
				t.claims.Set(p.overflowClaim, true)
				dropped = append(dropped, name)
				if size = claimsSize(*t.claims) + t.extra; size <= t.budget {
					break
				}
			}
		}
		te := TraceEntry{Rule: "claims-budget", Kind: "pipeline"}
		if len(dropped) > 0 {
			te.Log = append(te.Log, LogLine{Level: "warn", Msg: fmt.Sprintf("%s custom claims were %d bytes%s, over the budget of %d: dropped %s and set %s",
				t.name, before, loginContextNote(t.extra), t.budget, strings.Join(dropped, ", "), p.overflowClaim)})
		}
		if size > t.budget {
			te.Vote = Deny
			te.Error = fmt.Sprintf("%s custom claims are %d bytes%s, over the budget of %d", t.name, size, loginContextNote(t.extra), t.budget)
			res.Trace = append(res.Trace, te)
			res.Decision = Decision{Reason: "token claims exceed their size budget", Code: CodeAccessDenied, Rule: te.Rule}
			return
		}
		res.Trace = append(res.Trace, te)
	}
}

// claimsSize is the length of the claims' JSON object.
func claimsSize(c Claims) int {
	n := 2
	for i, cl := range c {
		if i > 0 {
			n++
		}
		v, err := jsonSize(cl.Value)
		if err != nil {
			v = 0 // refused by checkClaims before it got here
		}
		n += stringSize(cl.Name) + 1 + v
	}
	return n
}

// jsonSize computes the length encoding/json gives v, without encoding it
// (the budget is checked on every login). Uncommon types fall back to
// json.Marshal. It fails where json.Marshal would.
func jsonSize(v any) (int, error) {
	switch t := v.(type) {
	case nil:
		return 4, nil
	case string:
		return stringSize(t), nil
	case bool:
		if t {
			return 4, nil
		}
		return 5, nil
	case float64:
		return floatSize(t, 64)
	case float32:
		return floatSize(float64(t), 32)
	case int:
		return intSize(int64(t)), nil
	case int64:
		return intSize(t), nil
	case int32:
		return intSize(int64(t)), nil
	case uint64:
		return len(strconv.FormatUint(t, 10)), nil
	case json.Number:
		if !ValidJSONNumber(string(t)) {
			return 0, fmt.Errorf("invalid number literal %q", string(t))
		}
		return len(t), nil
	case []string:
		n := 2
		for i, s := range t {
			if i > 0 {
				n++
			}
			n += stringSize(s)
		}
		if t == nil {
			return 4, nil
		}
		return n, nil
	case []any:
		if t == nil {
			return 4, nil
		}
		n := 2
		for i, e := range t {
			if i > 0 {
				n++
			}
			s, err := jsonSize(e)
			if err != nil {
				return 0, err
			}
			n += s
		}
		return n, nil
	case map[string]any:
		if t == nil {
			return 4, nil
		}
		n, i := 2, 0
		for k, e := range t {
			if i > 0 {
				n++
			}
			i++
			s, err := jsonSize(e)
			if err != nil {
				return 0, fmt.Errorf("key %q: %w", k, err)
			}
			n += stringSize(k) + 1 + s
		}
		return n, nil
	case map[string]string:
		if t == nil {
			return 4, nil
		}
		n, i := 2, 0
		for k, e := range t {
			if i > 0 {
				n++
			}
			i++
			n += stringSize(k) + 1 + stringSize(e)
		}
		return n, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func intSize(i int64) int {
	var buf [24]byte
	return len(strconv.AppendInt(buf[:0], i, 10))
}

// floatSize follows encoding/json's float formatting.
func floatSize(f float64, bits int) (int, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("unsupported number %v", f)
	}
	var buf [32]byte
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	b := strconv.AppendFloat(buf[:0], f, format, -1, bits)
	n := len(b)
	if format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		n-- // e-09 is written e-9
	}
	return n, nil
}

// stringSize is the length of s as encoding/json writes it, HTML-safe
// escaping included (the token minter may use it).
func stringSize(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}

// LoginRules are the rules of this pipeline that live introspection
// replays: the last authorization rule's projection and every
// required-roles gate, asked of the built-in rules that declare them.
// WebAssembly rules declare none: their claims are not replayed.
func (p *Pipeline) LoginRules() LoginRules {
	var lr LoginRules
	for _, s := range p.steps {
		if pr, ok := s.rule.(ClaimsProjector); ok {
			proj := pr.Projection()
			lr.Projection = &proj
		}
		if g, ok := s.rule.(RolesGate); ok {
			lr.Gates = append(lr.Gates, g.RequiredRoles())
		}
	}
	return lr
}

// defaultDrop makes the unconfigured overflow drop list name the lists the
// authorization rule actually writes: with its claims renamed, the
// default names would drop nothing.
func (p *Pipeline) defaultDrop() {
	if !p.dropDefault {
		return
	}
	if proj := p.LoginRules().Projection; proj != nil {
		p.drop = []string{proj.Names.Permissions, proj.Names.Roles, proj.Names.Groups}
	}
}
