package runtime

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The login event's fast decoder. encoding/json spent more than half as
// long on the event as signing one ES256 token (reflection, a second scan
// of the value, a decodeState per call); this one reads the bytes once,
// straight into the Event, and skips keys claimsmith does not model
// without building anything for them.
//
// It is a fast path, not a second dialect: it accepts only what it can
// decode exactly as encoding/json (UseNumber) would, and gives up on
// anything else — a syntax or type error, a key seen twice in a struct
// (encoding/json merges duplicates), a key matching a field only
// case-insensitively or through escapes, invalid UTF-8 or a surrogate
// escape inside a decoded string, deep nesting. decodeEventFast then
// reports false and DecodeJSON decodes the same bytes, so every refusal and
// its message come from the one reference decoder. FuzzEventDecoderAgrees
// checks that whatever the fast path accepts, encoding/json accepts with
// an equal result.

// maxFastDepth is how deep the fast path follows nesting; deeper input
// goes to encoding/json (whose own limit is 10,000).
const maxFastDepth = 128

type evScanner struct {
	b     []byte
	i     int
	depth int
}

// decodeEventFast decodes data into req, or reports false (req is then
// partly written and must be discarded).
func decodeEventFast(data []byte, req *EventRequest) bool {
	d := evScanner{b: data}
	d.ws()
	if !d.eventRequest(req) {
		return false
	}
	d.ws()
	return d.i == len(d.b)
}

func (d *evScanner) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space (0 at the end).
func (d *evScanner) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *evScanner) lit(word string) bool {
	if len(d.b)-d.i >= len(word) && string(d.b[d.i:d.i+len(word)]) == word {
		d.i += len(word)
		return true
	}
	return false
}

// null consumes a null if one comes next.
func (d *evScanner) null() bool {
	return d.peek() == 'n' && d.lit("null")
}

// fields walks an object's members, calling member with each key (the raw
// bytes between the quotes, valid only during the call) positioned before
// the value, which member must consume. A key with an escape or a
// non-ASCII byte gives up: encoding/json would unescape and fold it before
// matching a field.
func (d *evScanner) fields(member func(key []byte) bool) bool {
	if d.peek() != '{' {
		return false
	}
	d.i++
	if d.depth++; d.depth > maxFastDepth {
		return false
	}
	if d.peek() == '}' {
		d.i++
		d.depth--
		return true
	}
	for {
		if d.peek() != '"' {
			return false
		}
		start := d.i + 1
		j := start
		for j < len(d.b) && d.b[j] != '"' {
			if c := d.b[j]; c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				return false
			}
			j++
		}
		if j == len(d.b) {
			return false
		}
		key := d.b[start:j]
		d.i = j + 1
		if d.peek() != ':' {
			return false
		}
		d.i++
		if !member(key) {
			return false
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			d.depth--
			return true
		default:
			return false
		}
	}
}

// unknown skips the value of a key no field has, unless the key matches a
// field case-insensitively (encoding/json would decode it into that field).
// names are the object's field names, lower case.
func (d *evScanner) unknown(key []byte, names ...string) bool {
	for _, n := range names {
		if len(n) == len(key) && asciiFoldEqual(key, n) {
			return false
		}
	}
	return d.skip()
}

func asciiFoldEqual(key []byte, lower string) bool {
	for i := range len(key) {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// seen marks field bit in *mask; false when the key came before (a
// duplicate, which encoding/json merges).
func seen(mask *uint32, bit uint) bool {
	if *mask&(1<<bit) != 0 {
		return false
	}
	*mask |= 1 << bit
	return true
}

// str decodes a string value. Invalid UTF-8 (encoding/json substitutes
// U+FFFD) and surrogate escapes (it pairs or substitutes them) give up.
func (d *evScanner) str() (string, bool) {
	if d.peek() != '"' {
		return "", false
	}
	start := d.i + 1
	j, ascii := start, true
	for j < len(d.b) {
		c := d.b[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			return d.strEscaped(start)
		}
		if c < 0x20 {
			return "", false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
		j++
	}
	if j == len(d.b) {
		return "", false
	}
	raw := d.b[start:j]
	if !ascii && !utf8.Valid(raw) {
		return "", false
	}
	d.i = j + 1
	return string(raw), true
}

func (d *evScanner) strEscaped(start int) (string, bool) {
	out := make([]byte, 0, 64)
	j := start
	for j < len(d.b) {
		c := d.b[j]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return "", false
			}
			d.i = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			j++
			continue
		}
		if j+1 >= len(d.b) {
			return "", false
		}
		switch e := d.b[j+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(d.b, j+2)
			if !ok || (r >= 0xD800 && r < 0xE000) {
				return "", false
			}
			out = utf8.AppendRune(out, r)
			j += 4
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipStr passes over a string, checking only its syntax (its content is
// not decoded, so its UTF-8 does not matter, as to encoding/json).
func (d *evScanner) skipStr() bool {
	j := d.i + 1
	for j < len(d.b) {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if j+1 >= len(d.b) {
				return false
			}
			switch d.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if _, ok := hex4(d.b, j+2); !ok {
					return false
				}
				j += 6
			default:
				return false
			}
		default:
			j++
		}
	}
	return false
}

// number passes over a JSON number (RFC 8259 grammar) and returns its text.
func (d *evScanner) number() ([]byte, bool) {
	start, j := d.i, d.i
	digits := func() bool {
		k := j
		for j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	switch {
	case j < len(d.b) && d.b[j] == '0':
		j++
	case j < len(d.b) && d.b[j] >= '1' && d.b[j] <= '9':
		digits()
	default:
		return nil, false
	}
	if j < len(d.b) && d.b[j] == '.' {
		j++
		if !digits() {
			return nil, false
		}
	}
	if j < len(d.b) && (d.b[j] == 'e' || d.b[j] == 'E') {
		j++
		if j < len(d.b) && (d.b[j] == '+' || d.b[j] == '-') {
			j++
		}
		if !digits() {
			return nil, false
		}
	}
	d.i = j
	return d.b[start:j], true
}

// skip passes over any value, checking its syntax.
func (d *evScanner) skip() bool {
	switch d.peek() {
	case '"':
		return d.skipStr()
	case '{':
		d.i++
		if d.depth++; d.depth > maxFastDepth {
			return false
		}
		if d.peek() == '}' {
			d.i++
			d.depth--
			return true
		}
		for {
			if d.peek() != '"' || !d.skipStr() || d.peek() != ':' {
				return false
			}
			d.i++
			if !d.skip() {
				return false
			}
			switch d.peek() {
			case ',':
				d.i++
			case '}':
				d.i++
				d.depth--
				return true
			default:
				return false
			}
		}
	case '[':
		d.i++
		if d.depth++; d.depth > maxFastDepth {
			return false
		}
		if d.peek() == ']' {
			d.i++
			d.depth--
			return true
		}
		for {
			if !d.skip() {
				return false
			}
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				d.depth--
				return true
			default:
				return false
			}
		}
	case 't':
		return d.lit("true")
	case 'f':
		return d.lit("false")
	case 'n':
		return d.lit("null")
	default:
		_, ok := d.number()
		return ok
	}
}

// any decodes a value as encoding/json decodes into an interface with
// UseNumber: map[string]any, []any, string, json.Number, bool or nil.
func (d *evScanner) any() (any, bool) {
	switch d.peek() {
	case '"':
		return d.str()
	case '{':
		m := map[string]any{}
		return m, d.anyMembers(m)
	case '[':
		d.i++
		if d.depth++; d.depth > maxFastDepth {
			return nil, false
		}
		out := []any{}
		if d.peek() == ']' {
			d.i++
			d.depth--
			return out, true
		}
		for {
			v, ok := d.any()
			if !ok {
				return nil, false
			}
			out = append(out, v)
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				d.depth--
				return out, true
			default:
				return nil, false
			}
		}
	case 't':
		return true, d.lit("true")
	case 'f':
		return false, d.lit("false")
	case 'n':
		return nil, d.lit("null")
	default:
		n, ok := d.number()
		if !ok {
			return nil, false
		}
		return json.Number(n), true
	}
}

// anyMembers decodes an object's members into m (a later duplicate key
// replaces the earlier value, as encoding/json does for maps).
func (d *evScanner) anyMembers(m map[string]any) bool {
	if d.peek() != '{' {
		return false
	}
	d.i++
	if d.depth++; d.depth > maxFastDepth {
		return false
	}
	if d.peek() == '}' {
		d.i++
		d.depth--
		return true
	}
	for {
		k, ok := d.str()
		if !ok || d.peek() != ':' {
			return false
		}
		d.i++
		v, ok := d.any()
		if !ok {
			return false
		}
		m[k] = v
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			d.depth--
			return true
		default:
			return false
		}
	}
}

// anyMap decodes a map[string]any field: null leaves it nil.
func (d *evScanner) anyMap(dst *map[string]any) bool {
	if d.null() {
		*dst = nil
		return true
	}
	m := make(map[string]any, 4)
	*dst = m
	return d.anyMembers(m)
}

// stringMap decodes a map[string]string field: null leaves it nil, a null
// value is "".
func (d *evScanner) stringMap(dst *map[string]string) bool {
	if d.null() {
		*dst = nil
		return true
	}
	if d.peek() != '{' {
		return false
	}
	d.i++
	m := make(map[string]string, 4)
	*dst = m
	if d.peek() == '}' {
		d.i++
		return true
	}
	for {
		k, ok := d.str()
		if !ok || d.peek() != ':' {
			return false
		}
		d.i++
		var v string
		if !d.null() {
			if v, ok = d.str(); !ok {
				return false
			}
		}
		m[k] = v
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// stringField decodes a string field: null leaves it as it is.
func (d *evScanner) stringField(dst *string) bool {
	if d.null() {
		return true
	}
	s, ok := d.str()
	*dst = s
	return ok
}

func (d *evScanner) boolField(dst *bool) bool {
	switch d.peek() {
	case 't':
		*dst = true
		return d.lit("true")
	case 'f':
		*dst = false
		return d.lit("false")
	case 'n':
		return d.lit("null")
	}
	return false
}

// intField takes what strconv.ParseInt takes, as encoding/json does.
func (d *evScanner) intField(dst *int) bool {
	if d.null() {
		return true
	}
	n, ok := d.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(string(n), 10, 0)
	*dst = int(v)
	return err == nil
}

func (d *evScanner) floatField(dst *float64) bool {
	if d.null() {
		return true
	}
	n, ok := d.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseFloat(string(n), 64)
	*dst = v
	return err == nil
}

// stringSlice decodes a []string field: null is nil, [] an empty slice, a
// null element "".
func (d *evScanner) stringSlice(dst *[]string) bool {
	if d.null() {
		*dst = nil
		return true
	}
	if d.peek() != '[' {
		return false
	}
	d.i++
	out := make([]string, 0, 4)
	if d.peek() == ']' {
		d.i++
		*dst = out
		return true
	}
	for {
		var s string
		if !d.null() {
			var ok bool
			if s, ok = d.str(); !ok {
				return false
			}
		}
		out = append(out, s)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*dst = out
			return true
		default:
			return false
		}
	}
}

// structOrNull: a struct field given null stays as it is.
func (d *evScanner) structOrNull() (isNull bool) { return d.null() }

func (d *evScanner) eventRequest(r *EventRequest) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "trigger":
			return seen(&mask, 0) && d.stringField((*string)(&r.Trigger))
		case "user":
			return seen(&mask, 1) && (d.structOrNull() || d.user(&r.User))
		case "client":
			return seen(&mask, 2) && (d.structOrNull() || d.client(&r.Client))
		case "connection":
			return seen(&mask, 3) && (d.structOrNull() || d.connection(&r.Connection))
		case "request":
			return seen(&mask, 4) && (d.structOrNull() || d.request(&r.Request))
		case "transaction":
			return seen(&mask, 5) && (d.structOrNull() || d.transaction(&r.Transaction))
		case "authorization":
			if !seen(&mask, 6) {
				return false
			}
			if d.null() {
				r.Authorization = nil
				return true
			}
			r.Authorization = new(Authorization)
			return d.authorization(r.Authorization)
		case "secrets":
			return seen(&mask, 7) && d.stringMap(&r.Secrets)
		case "mint":
			return seen(&mask, 8) && d.boolField(&r.Mint)
		}
		return d.unknown(k, "trigger", "user", "client", "connection", "request", "transaction", "authorization", "secrets", "mint")
	})
}

func (d *evScanner) user(u *User) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "user_id":
			return seen(&mask, 0) && d.stringField(&u.UserID)
		case "email":
			return seen(&mask, 1) && d.stringField(&u.Email)
		case "email_verified":
			return seen(&mask, 2) && d.boolField(&u.EmailVerified)
		case "name":
			return seen(&mask, 3) && d.stringField(&u.Name)
		case "nickname":
			return seen(&mask, 4) && d.stringField(&u.Nickname)
		case "username":
			return seen(&mask, 5) && d.stringField(&u.Username)
		case "phone_number":
			return seen(&mask, 6) && d.stringField(&u.PhoneNumber)
		case "picture":
			return seen(&mask, 7) && d.stringField(&u.Picture)
		case "groups":
			return seen(&mask, 8) && d.stringSlice(&u.Groups)
		case "app_metadata":
			return seen(&mask, 9) && d.anyMap(&u.AppMetadata)
		case "user_metadata":
			return seen(&mask, 10) && d.anyMap(&u.UserMetadata)
		case "identities":
			return seen(&mask, 11) && d.identities(&u.Identities)
		case "created_at":
			return seen(&mask, 12) && d.stringField(&u.CreatedAt)
		case "last_login":
			return seen(&mask, 13) && d.stringField(&u.LastLogin)
		case "logins_count":
			return seen(&mask, 14) && d.intField(&u.LoginsCount)
		case "last_password_reset":
			return seen(&mask, 15) && d.stringField(&u.LastPasswordReset)
		}
		return d.unknown(k, "user_id", "email", "email_verified", "name", "nickname", "username", "phone_number", "picture",
			"groups", "app_metadata", "user_metadata", "identities", "created_at", "last_login", "logins_count", "last_password_reset")
	})
}

func (d *evScanner) identities(dst *[]Identity) bool {
	if d.null() {
		*dst = nil
		return true
	}
	if d.peek() != '[' {
		return false
	}
	d.i++
	out := make([]Identity, 0, 1)
	if d.peek() == ']' {
		d.i++
		*dst = out
		return true
	}
	for {
		var id Identity
		if !d.null() && !d.identity(&id) {
			return false
		}
		out = append(out, id)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*dst = out
			return true
		default:
			return false
		}
	}
}

func (d *evScanner) identity(id *Identity) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "connection":
			return seen(&mask, 0) && d.stringField(&id.Connection)
		case "provider":
			return seen(&mask, 1) && d.stringField(&id.Provider)
		case "user_id":
			return seen(&mask, 2) && d.stringField(&id.UserID)
		case "is_social":
			return seen(&mask, 3) && d.boolField(&id.IsSocial)
		}
		return d.unknown(k, "connection", "provider", "user_id", "is_social")
	})
}

func (d *evScanner) client(c *Client) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "client_id":
			return seen(&mask, 0) && d.stringField(&c.ClientID)
		case "name":
			return seen(&mask, 1) && d.stringField(&c.Name)
		case "metadata":
			return seen(&mask, 2) && d.stringMap(&c.Metadata)
		}
		return d.unknown(k, "client_id", "name", "metadata")
	})
}

func (d *evScanner) connection(c *Connection) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "id":
			return seen(&mask, 0) && d.stringField(&c.ID)
		case "name":
			return seen(&mask, 1) && d.stringField(&c.Name)
		case "strategy":
			return seen(&mask, 2) && d.stringField(&c.Strategy)
		}
		return d.unknown(k, "id", "name", "strategy")
	})
}

func (d *evScanner) request(r *Request) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "ip":
			return seen(&mask, 0) && d.stringField(&r.IP)
		case "user_agent":
			return seen(&mask, 1) && d.stringField(&r.UserAgent)
		case "hostname":
			return seen(&mask, 2) && d.stringField(&r.Hostname)
		case "method":
			return seen(&mask, 3) && d.stringField(&r.Method)
		case "language":
			return seen(&mask, 4) && d.stringField(&r.Language)
		case "query":
			return seen(&mask, 5) && d.stringMap(&r.Query)
		case "geoip":
			if !seen(&mask, 6) {
				return false
			}
			if d.null() {
				r.GeoIP = nil
				return true
			}
			r.GeoIP = new(GeoIP)
			return d.geoIP(r.GeoIP)
		}
		return d.unknown(k, "ip", "user_agent", "hostname", "method", "language", "query", "geoip")
	})
}

func (d *evScanner) geoIP(g *GeoIP) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "country_code":
			return seen(&mask, 0) && d.stringField(&g.CountryCode)
		case "country_name":
			return seen(&mask, 1) && d.stringField(&g.CountryName)
		case "city_name":
			return seen(&mask, 2) && d.stringField(&g.CityName)
		case "latitude":
			return seen(&mask, 3) && d.floatField(&g.Latitude)
		case "longitude":
			return seen(&mask, 4) && d.floatField(&g.Longitude)
		case "time_zone":
			return seen(&mask, 5) && d.stringField(&g.TimeZone)
		}
		return d.unknown(k, "country_code", "country_name", "city_name", "latitude", "longitude", "time_zone")
	})
}

func (d *evScanner) transaction(t *Transaction) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "requested_scopes":
			return seen(&mask, 0) && d.stringSlice(&t.RequestedScopes)
		case "audience":
			return seen(&mask, 1) && d.stringField(&t.Audience)
		case "protocol":
			return seen(&mask, 2) && d.stringField(&t.Protocol)
		case "grant_type":
			return seen(&mask, 3) && d.stringField(&t.GrantType)
		case "nonce":
			return seen(&mask, 4) && d.stringField(&t.Nonce)
		case "id":
			return seen(&mask, 5) && d.stringField(&t.ID)
		}
		return d.unknown(k, "requested_scopes", "audience", "protocol", "grant_type", "nonce", "id")
	})
}

func (d *evScanner) authorization(a *Authorization) bool {
	var mask uint32
	return d.fields(func(k []byte) bool {
		switch string(k) {
		case "groups":
			return seen(&mask, 0) && d.stringSlice(&a.Groups)
		case "roles":
			return seen(&mask, 1) && d.stringSlice(&a.Roles)
		case "permissions":
			return seen(&mask, 2) && d.stringSlice(&a.Permissions)
		}
		return d.unknown(k, "groups", "roles", "permissions")
	})
}
