package authz

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/runtime"
)

// topLevel lists the document keys import accepts. applications and rules
// are the extension's legacy (v1) sections: accepted, ignored, never written.
var topLevel = map[string]bool{
	"configuration": true, "groups": true, "roles": true, "permissions": true,
	"claimsmith": true, "applications": false, "rules": false,
}

// UnmarshalJSON decodes the extension's document strictly: the top level must
// be an object whose keys are configuration, groups, roles, permissions, the
// optional claimsmith section or the ignored legacy applications and rules.
// Each entity that fails to decode is named by its section, index and _id.
// Sections are streamed entity by entity, so a large file is not held in
// memory several times over while it decodes.
func (d *Document) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	notObject := func(err error) error {
		return &runtime.ValidationError{Entity: "document", Reason: "is not a JSON object: " + jsonReason(err)}
	}
	if tok, err := dec.Token(); err != nil {
		return notObject(err)
	} else if tok != json.Delim('{') {
		return &runtime.ValidationError{Entity: "document", Reason: fmt.Sprintf("is not a JSON object (starts with %v)", tok)}
	}
	var out Document
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return notObject(err)
		}
		key, _ := tok.(string)
		keep, ok := topLevel[key]
		if !ok {
			return &runtime.ValidationError{Entity: "document", Field: key,
				Reason: "unknown top-level key (expected configuration, groups, roles, permissions, claimsmith; legacy applications and rules are ignored)"}
		}
		switch {
		case !keep:
			var skip json.RawMessage
			err = dec.Decode(&skip)
			if err == nil && !isNull(skip) && bytes.TrimSpace(skip)[0] != '[' {
				return &runtime.ValidationError{Entity: "document", Field: key, Reason: "legacy section is not an array"}
			}
		case key == "configuration":
			err = streamSection(dec, "configuration", &out.Configuration)
		case key == "groups":
			err = streamSection(dec, "group", &out.Groups)
		case key == "roles":
			err = streamSection(dec, "role", &out.Roles)
		case key == "permissions":
			err = streamSection(dec, "permission", &out.Permissions)
		case key == "claimsmith":
			var raw json.RawMessage
			if err = dec.Decode(&raw); err == nil {
				out.Claimsmith, err = decodeClaimsmith(raw)
			}
		}
		if err != nil {
			var ve *runtime.ValidationError
			if errors.As(err, &ve) {
				return err
			}
			return &runtime.ValidationError{Entity: "document", Field: key, Reason: jsonReason(err)}
		}
	}
	if _, err := dec.Token(); err != nil {
		return notObject(err)
	}
	out.internUserIDs()
	*d = out
	return nil
}

// internUserIDs makes every occurrence of a user id share one string: a user
// in ten groups is otherwise decoded ten times, and user ids are most of a
// large document's memory.
func (d *Document) internUserIDs() {
	seen := make(map[string]string)
	intern := func(ids []string) {
		for i, u := range ids {
			if c, ok := seen[u]; ok {
				ids[i] = c
			} else {
				seen[u] = u
			}
		}
	}
	for i := range d.Groups {
		intern(d.Groups[i].Members)
	}
	for i := range d.Roles {
		intern(d.Roles[i].Users)
	}
}

func decodeClaimsmith(raw json.RawMessage) (*Section, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s struct {
		Applications json.RawMessage `json:"applications"`
		Profiles     json.RawMessage `json:"profiles"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, &runtime.ValidationError{Entity: "document", Field: "claimsmith", Reason: jsonReason(err)}
	}
	out := &Section{}
	if err := decodeSection(s.Applications, "application", &out.Applications); err != nil {
		return nil, err
	}
	if s.Profiles != nil {
		if err := decodeSection(s.Profiles, "profile", &out.Profiles); err != nil {
			return nil, err
		}
		if out.Profiles == nil {
			out.Profiles = []ProfileRecord{}
		}
	}
	return out, nil
}

// streamSection decodes one array section from dec entity by entity.
func streamSection[T any](dec *json.Decoder, entity string, dst *[]T) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*dst = nil
		return nil
	}
	if tok != json.Delim('[') {
		return &runtime.ValidationError{Entity: entity, Reason: fmt.Sprintf("section is not an array of objects (found %v)", tok)}
	}
	out := []T{}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		var v T
		if err := decodeEntity(raw, entity, i, &v); err != nil {
			return err
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*dst = out
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// decodeSection decodes a JSON array element by element so an error names the
// failing entity (index, _id, field) instead of a byte offset.
func decodeSection[T any](raw json.RawMessage, entity string, dst *[]T) error {
	if isNull(raw) {
		*dst = nil
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return &runtime.ValidationError{Entity: entity, Reason: "section is not an array of objects: " + jsonReason(err)}
	}
	out := make([]T, len(items))
	for i, it := range items {
		if err := decodeEntity(it, entity, i, &out[i]); err != nil {
			return err
		}
	}
	*dst = out
	return nil
}

// decodeEntity decodes one entity; its error names the entity by _id (or
// user_id, client_id, or its index) and the failing field.
func decodeEntity[T any](raw json.RawMessage, entity string, i int, v *T) error {
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return &runtime.ValidationError{Entity: entity, ID: fmt.Sprintf("#%d", i), Reason: "is not a JSON object"}
	}
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var head struct {
		ID     any `json:"_id"`
		UserID any `json:"user_id"`
		Client any `json:"client_id"`
	}
	_ = json.Unmarshal(raw, &head)
	id := fmt.Sprintf("#%d", i)
	for _, x := range []any{head.ID, head.UserID, head.Client} {
		if s, ok := x.(string); ok && s != "" {
			id = s
			break
		}
	}
	field := ""
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field = te.Field
	}
	return &runtime.ValidationError{Entity: entity, ID: id, Field: field, Reason: jsonReason(err)}
}

// jsonReason turns a decoding error into text without Go type names.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch want {
		case "slice":
			want = "array"
		case "struct", "map":
			want = "object"
		case "ptr":
			want = "boolean"
		}
		return fmt.Sprintf("is a JSON %s, expected %s", te.Value, want)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se.Error())
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// DecodeDocument reads and validates an extension document (import). It
// returns a *runtime.ValidationError naming the entity, its _id and the field
// when anything is wrong; nothing is returned half-decoded.
func DecodeDocument(r io.Reader) (*Document, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read document: %w", err)
	}
	return ParseDocument(b)
}

// ParseDocument is DecodeDocument on bytes.
func ParseDocument(b []byte) (*Document, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // tolerate a UTF-8 BOM from Windows editors
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, &runtime.ValidationError{Entity: "document", Reason: "is empty"}
	}
	// encoding/json turns bytes that are not UTF-8 into U+FFFD: ids would
	// silently become other ids, so such a document is refused whole.
	if !utf8.Valid(b) {
		return nil, &runtime.ValidationError{Entity: "document", Reason: fmt.Sprintf("is not valid UTF-8 (first bad byte at offset %d)", invalidUTF8At(b))}
	}
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		var ve *runtime.ValidationError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, &runtime.ValidationError{Entity: "document", Reason: jsonReason(err)}
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// invalidUTF8At is the offset of the first byte of b that is not part of a
// valid UTF-8 sequence (len(b) when there is none).
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// ExportOptions selects what an export contains.
type ExportOptions struct {
	// Full adds the claimsmith section (applications and user profiles);
	// without it the export is exactly the extension's format.
	Full bool
	// Profiles are written into the claimsmith section when Full.
	Profiles []runtime.Profile
}

// exportDoc fixes the key order and keeps empty sections as [] so the
// extension's importer, which expects arrays, accepts the file.
type exportDoc struct {
	Configuration []Configuration `json:"configuration"`
	Groups        []Group         `json:"groups"`
	Roles         []Role          `json:"roles"`
	Permissions   []Permission    `json:"permissions"`
	Claimsmith    *exportSection  `json:"claimsmith,omitempty"`
}

type exportSection struct {
	Applications []Application     `json:"applications"`
	Profiles     []runtime.Profile `json:"profiles"`
}

// Encode writes doc in the extension's export format: indented JSON with a
// trailing newline, sections in a fixed order, entities in storage order, so
// the same document always gives the same bytes.
func Encode(w io.Writer, doc *Document, opt ExportOptions) error {
	out := exportDoc{
		Configuration: nonNil(doc.Configuration),
		Groups:        nonNil(doc.Groups),
		Roles:         nonNil(doc.Roles),
		Permissions:   nonNil(doc.Permissions),
	}
	if opt.Full {
		s := &exportSection{Applications: []Application{}, Profiles: []runtime.Profile{}}
		if doc.Claimsmith != nil {
			s.Applications = nonNil(doc.Claimsmith.Applications)
		}
		if opt.Profiles != nil {
			s.Profiles = make([]runtime.Profile, len(opt.Profiles))
			copy(s.Profiles, opt.Profiles)
			sort.Slice(s.Profiles, func(i, j int) bool { return s.Profiles[i].UserID < s.Profiles[j].UserID })
			for i := range s.Profiles {
				if s.Profiles[i].AppMetadata == nil {
					s.Profiles[i].AppMetadata = map[string]any{}
				}
				if s.Profiles[i].UserMetadata == nil {
					s.Profiles[i].UserMetadata = map[string]any{}
				}
			}
		}
		out.Claimsmith = s
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// NewID returns a random RFC 4122 version 4 UUID, the extension's _id format.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
