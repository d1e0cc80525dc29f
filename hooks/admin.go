package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The admin API: JSON under /api/ for groups, roles, permissions,
// applications, users, import/export and the audit log, on the extension's
// paths where it had them. Every route declares the key scope it needs;
// authentication happens before any body is read. Reads come from one
// store snapshot; writes go through authz.Writer.Apply with the snapshot's
// revision (ETag) so a write never overwrites a change it did not see, and
// each write appends an audit record.

// AdminStore is what the admin API needs of the authorization store.
type AdminStore interface {
	authz.Reader
	authz.Writer
}

// AdminKeys authenticates admin API keys.
type AdminKeys interface {
	Authenticate(ctx context.Context, secret string) (admin.Key, error)
}

// AdminAudit records writes and pages through them.
type AdminAudit interface {
	Append(ctx context.Context, r admin.Record) (admin.Record, error)
	List(ctx context.Context, q admin.AuditQuery) (admin.AuditPage, error)
}

// Limits and paging defaults of the admin API.
const (
	DefaultAdminMaxBody   = 1 << 20  // one entity or a list of ids
	DefaultAdminMaxImport = 64 << 20 // a whole extension document
	DefaultPerPage        = 100
	MaxPerPage            = 1000
	// writeAttempts bounds the re-reads of a write without If-Match that
	// lost a race with another writer.
	writeAttempts = 16
)

// AdminConfig wires the admin API.
type AdminConfig struct {
	Store AdminStore
	Keys  AdminKeys
	Audit AdminAudit
	// Profiles, when set, lets GET /api/export?full=true include user
	// profiles.
	Profiles authz.ProfileLister
	Log      *slog.Logger
	Now      func() time.Time
	// MaxBody and MaxImport limit request bodies (0: the defaults above).
	MaxBody   int64
	MaxImport int64
}

// AdminAPI serves /api/. Mount it with Register on the server's mux, or
// serve it directly (it routes by itself).
type AdminAPI struct {
	core   *adminCore
	routes []adminRoute
	mux    *http.ServeMux
}

// adminCore is what every resource handler shares.
type adminCore struct {
	store     AdminStore
	keys      AdminKeys
	audit     AdminAudit
	profiles  authz.ProfileLister
	log       *slog.Logger
	now       func() time.Time
	maxBody   int64
	maxImport int64
}

// adminCall is one authenticated request.
type adminCall struct {
	key   admin.Key
	reqID string
}

type adminHandlerFunc func(w http.ResponseWriter, r *http.Request, c *adminCall) error

// adminRoute is one operation: the router and the OpenAPI document are both
// built from this table.
type adminRoute struct {
	method, pattern string
	scope           string // "" means no key needed
	summary         string
	tag             string
	query           []adminParam
	body            string // request body schema, "" for none
	status          int    // success status
	resp            string // success response schema, "" for none
	h               adminHandlerFunc
}

type adminParam struct{ name, typ, desc string }

// AdminRoute describes one operation of the admin API.
type AdminRoute struct {
	Method, Pattern, Scope string
}

// NewAdminAPI checks cfg and builds the router.
func NewAdminAPI(cfg AdminConfig) (*AdminAPI, error) {
	if cfg.Store == nil || cfg.Keys == nil || cfg.Audit == nil {
		return nil, fmt.Errorf("admin API: Store, Keys and Audit are required: %w", runtime.ErrInvalid)
	}
	c := &adminCore{
		store: cfg.Store, keys: cfg.Keys, audit: cfg.Audit, profiles: cfg.Profiles,
		log: cfg.Log, now: nowFunc(cfg.Now), maxBody: cfg.MaxBody, maxImport: cfg.MaxImport,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultAdminMaxBody
	}
	if c.maxImport <= 0 {
		c.maxImport = DefaultAdminMaxImport
	}
	a := &AdminAPI{core: c, mux: http.NewServeMux()}
	a.routes = adminRoutes(c)
	a.Register(a.mux)
	return a, nil
}

// Routes lists the operations (method, path pattern, scope).
func (a *AdminAPI) Routes() []AdminRoute {
	out := make([]AdminRoute, len(a.routes))
	for i, rt := range a.routes {
		out[i] = AdminRoute{Method: rt.method, Pattern: rt.pattern, Scope: rt.scope}
	}
	return out
}

// ServeHTTP implements http.Handler.
func (a *AdminAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Register adds every admin path to mux, one handler per path that
// dispatches on the method (so a wrong method gets a JSON 405 with Allow),
// plus a JSON 404 for unknown paths under /api/. More specific patterns
// registered by others (the extension's policy endpoint,
// POST /api/users/{user_id}/policy/{client_id}) keep precedence.
func (a *AdminAPI) Register(mux *http.ServeMux) {
	byPath := map[string]map[string]adminRoute{}
	var order []string
	for _, rt := range a.routes {
		if byPath[rt.pattern] == nil {
			byPath[rt.pattern] = map[string]adminRoute{}
			order = append(order, rt.pattern)
		}
		byPath[rt.pattern][rt.method] = rt
	}
	for _, p := range order {
		methods := byPath[p]
		allow := make([]string, 0, len(methods))
		for m := range methods {
			allow = append(allow, m)
		}
		sort.Strings(allow)
		mux.Handle(p, &adminPath{core: a.core, methods: methods, allow: strings.Join(allow, ", ")})
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, fmt.Errorf("no admin endpoint %s %s: %w", r.Method, r.URL.Path, runtime.ErrNotFound))
	})
}

// ServerRoutes returns the admin API as routes of the server's table (one
// per path, imports with their larger body limit), including the JSON 404 for
// unknown /api/ paths.
func (a *AdminAPI) ServerRoutes() []Route {
	var out []Route
	seen := map[string]bool{}
	for _, rt := range a.routes {
		if seen[rt.pattern] {
			continue
		}
		seen[rt.pattern] = true
		limit := a.core.maxBody
		if rt.scope == admin.ScopeImport {
			limit = a.core.maxImport
		}
		out = append(out, Route{Pattern: rt.pattern, Handler: a.mux, MaxBody: limit})
	}
	return append(out, Route{Pattern: "/api/", Handler: a.mux, MaxBody: a.core.maxBody})
}

// adminPath serves the operations of one path.
type adminPath struct {
	core    *adminCore
	methods map[string]adminRoute
	allow   string
}

func (p *adminPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	rt, ok := p.methods[method]
	if !ok {
		w.Header().Set("Allow", p.allow)
		WriteJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: "method_not_allowed",
			Description: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, p.allow)})
		return
	}
	c := &adminCall{reqID: r.Header.Get("X-Request-Id")}
	if !validRequestID(c.reqID) {
		c.reqID = newTraceID()
	}
	if rt.scope != "" {
		key, err := p.core.authenticate(r, rt.scope)
		if err != nil {
			if errors.Is(err, runtime.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="claimsmith-admin"`)
			}
			WriteError(w, err)
			return
		}
		c.key = key
	}
	if err := rt.h(w, r, c); err != nil {
		lvl := slog.LevelInfo
		if st, _ := StatusOf(err); st >= 500 {
			lvl = slog.LevelError
		}
		p.core.log.Log(r.Context(), lvl, "admin request failed", "method", r.Method, "path", r.URL.Path,
			"key", c.key.Name, "request_id", c.reqID, "err", err)
		WriteError(w, err)
	}
}

// validRequestID accepts a caller's X-Request-Id for logs and audit records
// only when it is a short token of safe characters.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// authenticate checks the bearer key and its scope: 401 without a valid
// key, 403 when the key lacks the scope.
func (c *adminCore) authenticate(r *http.Request, scope string) (admin.Key, error) {
	secret, ok := bearerToken(r)
	if !ok {
		return admin.Key{}, authErr("bearer", "an admin key is required (Authorization: Bearer <key>)")
	}
	key, err := c.keys.Authenticate(r.Context(), secret)
	if err != nil {
		if errors.Is(err, runtime.ErrUnauthenticated) {
			return admin.Key{}, authErr("bearer", "the admin key is not valid")
		}
		return admin.Key{}, err
	}
	if !key.Has(scope) {
		return admin.Key{}, fmt.Errorf("admin key %q lacks the %q scope: %w", key.Name, scope, runtime.ErrForbidden)
	}
	return key, nil
}

// ---- ETags and revisions ----

func etagOf(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// parseETag reads one entity tag holding a store revision.
func parseETag(header, v string) (uint64, error) {
	t := strings.TrimSpace(v)
	t = strings.TrimPrefix(t, "W/")
	t = strings.TrimSuffix(strings.TrimPrefix(t, `"`), `"`)
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || strings.Contains(v, ",") {
		return 0, &runtime.ValidationError{Entity: "request", Field: header,
			Reason: fmt.Sprintf("%q is not one ETag from this API (a quoted revision such as \"42\")", v)}
	}
	return n, nil
}

// ifMatch returns the revision the caller expects and whether it gave one.
// "*" means any revision.
func ifMatch(r *http.Request) (uint64, bool, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, false, nil
	}
	n, err := parseETag("If-Match", v)
	return n, err == nil, err
}

// notModified answers 304 when If-None-Match names the current revision.
func notModified(w http.ResponseWriter, r *http.Request, rev uint64) bool {
	w.Header().Set("ETag", etagOf(rev))
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	for _, t := range strings.Split(inm, ",") {
		if n, err := parseETag("If-None-Match", t); err == nil && n == rev || strings.TrimSpace(t) == "*" {
			w.WriteHeader(http.StatusNotModified)
			return true
		}
	}
	return false
}

// snapshot reads the model once for a GET and handles If-None-Match.
func (c *adminCore) snapshot(w http.ResponseWriter, r *http.Request) (*authz.Model, bool, error) {
	m, err := c.store.Snapshot(r.Context())
	if err != nil {
		return nil, false, err
	}
	return m, notModified(w, r, m.Revision()), nil
}

// ---- request bodies ----

// decodeBody reads a JSON body strictly (unknown fields, trailing data and
// type mismatches are 400s naming the field) into dst.
func (c *adminCore) decodeBody(w http.ResponseWriter, r *http.Request, entity string, dst any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(w, r, c.maxBody)
	if err != nil {
		return err
	}
	return decodeStrict(body, entity, dst)
}

// decodeStrict is the decoder of every admin request body.
func decodeStrict(body []byte, entity string, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &runtime.ValidationError{Entity: entity, Field: "body", Reason: "is empty: a JSON body is required"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return bodyError(entity, err)
	}
	if dec.More() {
		return &runtime.ValidationError{Entity: entity, Field: "body", Reason: "has data after the JSON value"}
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err == nil {
		return &runtime.ValidationError{Entity: entity, Field: "body", Reason: "has data after the JSON value"}
	}
	return nil
}

// bodyError names the field a JSON decoding error is about.
func bodyError(entity string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return &runtime.ValidationError{Entity: entity, Field: field, Reason: fmt.Sprintf("is a JSON %s, expected %s", te.Value, jsonKind(te.Type.Kind().String()))}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &runtime.ValidationError{Entity: entity, Field: "body", Reason: fmt.Sprintf("is not valid JSON at byte %d: %v", se.Offset, se)}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return &runtime.ValidationError{Entity: entity, Field: strings.Trim(f, `"`), Reason: "is not a known field"}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &runtime.ValidationError{Entity: entity, Field: "body", Reason: "is truncated JSON"}
	}
	// Errors from a field's own UnmarshalJSON (authz entities) already name it.
	var ve *runtime.ValidationError
	if errors.As(err, &ve) {
		return err
	}
	return &runtime.ValidationError{Entity: entity, Field: "body", Reason: msg}
}

func jsonKind(k string) string {
	switch k {
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	case "ptr":
		return "value"
	case "int", "int64", "uint64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return k
}

// idList is a body that is a JSON array of strings (ids), as the extension's
// PATCH and DELETE sub-resource endpoints take.
func (c *adminCore) idList(w http.ResponseWriter, r *http.Request, entity, field string) ([]string, error) {
	var ids []string
	if err := c.decodeBody(w, r, entity, &ids); err != nil {
		var ve *runtime.ValidationError
		if errors.As(err, &ve) && ve.Field == "body" {
			ve.Field = field
		}
		return nil, err
	}
	if ids == nil {
		return nil, &runtime.ValidationError{Entity: entity, Field: field, Reason: "is null: send a JSON array of ids"}
	}
	return ids, nil
}

// ---- paging and filters ----

// listQuery is the paging and filter of every list: page (0-based, as the
// extension's member lists), per_page, q (case-insensitive substring of the
// name, or of the field named by "field" as the extension's search) and
// name (case-insensitive exact match).
type listQuery struct {
	page, perPage int
	q, field      string
	name          string
}

func parseListQuery(r *http.Request) (listQuery, error) {
	v := r.URL.Query()
	lq := listQuery{perPage: DefaultPerPage, q: strings.ToLower(v.Get("q")), field: v.Get("field"), name: v.Get("name")}
	num := func(key string, min, max int, dst *int) error {
		s := v.Get(key)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < min || n > max {
			return &runtime.ValidationError{Entity: "query", Field: key, Reason: fmt.Sprintf("is %q, must be an integer %d–%d", s, min, max)}
		}
		*dst = n
		return nil
	}
	if err := num("page", 0, 1<<30, &lq.page); err != nil {
		return lq, err
	}
	if err := num("per_page", 1, MaxPerPage, &lq.perPage); err != nil {
		return lq, err
	}
	switch lq.field {
	case "", "name", "description":
	default:
		return lq, &runtime.ValidationError{Entity: "query", Field: "field", Reason: fmt.Sprintf("is %q, must be name or description", lq.field)}
	}
	return lq, nil
}

// match applies q and name to an item's name and description.
func (lq listQuery) match(name, description string) bool {
	if lq.name != "" && !strings.EqualFold(lq.name, name) {
		return false
	}
	if lq.q != "" {
		hay := name
		if lq.field == "description" {
			hay = description
		}
		return containsFold(hay, lq.q)
	}
	return true
}

// containsFold reports whether the lower-cased needle occurs in hay, case
// folded; ASCII (the common case) is compared without allocating.
func containsFold(hay, lowerNeedle string) bool {
	for i := 0; i < len(hay); i++ {
		if hay[i] >= 0x80 {
			return strings.Contains(strings.ToLower(hay), lowerNeedle)
		}
	}
	n := len(lowerNeedle)
	for i := 0; i+n <= len(hay); i++ {
		j := 0
		for ; j < n; j++ {
			c := hay[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerNeedle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// listPage is the envelope of every list: the items under the resource's
// key (as the extension's {"groups": [...], "total": n}), the total after
// filtering, and the page asked for.
func listPage[T any](key string, items []T, lq listQuery) map[string]any {
	total := len(items)
	start := min(lq.page*lq.perPage, total)
	end := min(start+lq.perPage, total)
	page := items[start:end]
	if page == nil {
		page = []T{}
	}
	return map[string]any{key: page, "total": total, "page": lq.page, "per_page": lq.perPage}
}

// ---- writes ----

// adminChange is what a write does: its ops, and how to describe it in the
// audit log.
type adminChange struct {
	action string // e.g. "group.create"
	entity string
	id     string
	ops    []authz.Op
	// state returns the audited entity in a document (nil when absent).
	state func(*authz.Document) any
}

// writeResult is a committed write.
type writeResult struct {
	revision uint64
	after    *authz.Document // the document the write produced
}

// apply runs a write: build the ops from a snapshot, apply them against the
// snapshot's revision, and audit the result. With If-Match the caller's
// revision must be the store's (409 otherwise); without it a write that
// loses a race is rebuilt from a fresh snapshot, so it never acts on state
// it did not see.
func (c *adminCore) apply(r *http.Request, call *adminCall, build func(m *authz.Model) (adminChange, error)) (writeResult, error) {
	ctx := r.Context()
	expected, pinned, err := ifMatch(r)
	if err != nil {
		return writeResult{}, err
	}
	for attempt := 1; ; attempt++ {
		m, err := c.store.Snapshot(ctx)
		if err != nil {
			return writeResult{}, err
		}
		if pinned && m.Revision() != expected {
			return writeResult{}, &runtime.ConflictError{Expected: expected, Actual: m.Revision()}
		}
		ch, err := build(m)
		if err != nil {
			return writeResult{}, err
		}
		rev, err := c.store.Apply(ctx, m.Revision(), ch.ops...)
		if err != nil {
			if errors.Is(err, runtime.ErrConflict) && !pinned && attempt < writeAttempts {
				// Lost a race: back off a little (jittered, growing) so
				// a burst of writers does not keep colliding.
				select {
				case <-ctx.Done():
					return writeResult{}, ctx.Err()
				case <-time.After(time.Duration(rand.IntN(attempt*500)+100) * time.Microsecond):
				}
				continue
			}
			return writeResult{}, err
		}
		if rev != m.Revision()+1 {
			// Only at revision 0, where Apply cannot check the expected
			// revision (0 means "any"): another write came first. The
			// audit then shows the store as this write left it.
			cur, err := c.store.Snapshot(ctx)
			if err != nil {
				return writeResult{}, err
			}
			c.record(ctx, call, ch, m, rev, cur.Document())
			return writeResult{revision: rev, after: cur.Document()}, nil
		}
		// The store applied ch.ops to exactly this snapshot's document, so
		// applying them to a copy reproduces its result for the audit.
		after := m.Document().CopyForWrite()
		for _, op := range ch.ops {
			if err := op.Apply(after); err != nil {
				// Cannot happen while ops are deterministic; fall back to
				// the store's current state rather than fail a committed write.
				c.log.Error("admin: replaying a committed op failed", "action", ch.action, "err", err)
				cur, serr := c.store.Snapshot(ctx)
				if serr != nil {
					return writeResult{}, serr
				}
				after = cur.Document()
				break
			}
		}
		c.record(ctx, call, ch, m, rev, after)
		return writeResult{revision: rev, after: after}, nil
	}
}

// record appends the audit record of a committed write. A failure is logged
// loudly: the write itself is committed and cannot be taken back.
func (c *adminCore) record(ctx context.Context, call *adminCall, ch adminChange, before *authz.Model, rev uint64, after *authz.Document) {
	rec := admin.Record{
		Time: c.now(), KeyID: call.key.ID, KeyName: call.key.Name, Action: ch.action,
		Entity: ch.entity, EntityID: ch.id, RevisionBefore: before.Revision(), RevisionAfter: rev,
		RequestID: call.reqID,
	}
	if ch.state != nil {
		rec.Before = rawJSON(ch.state(before.Document()))
		rec.After = rawJSON(ch.state(after))
	}
	if _, err := c.audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		c.log.Error("admin: audit record lost", "action", ch.action, "entity_id", ch.id, "revision", rev, "key", call.key.Name, "err", err)
		return
	}
	c.log.Info("admin write", "action", ch.action, "entity_id", ch.id, "revision", rev, "key", call.key.Name, "request_id", call.reqID)
}

func rawJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil
	}
	return b
}

// noContent answers a sub-resource write as the extension does (204), with
// the new revision as ETag.
func noContent(w http.ResponseWriter, res writeResult) error {
	w.Header().Set("ETag", etagOf(res.revision))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeEntity answers a write with the entity and the new revision.
func writeEntity(w http.ResponseWriter, status int, res writeResult, v any) error {
	w.Header().Set("ETag", etagOf(res.revision))
	WriteJSON(w, status, v)
	return nil
}

// boolQuery reads an optional boolean query parameter.
func boolQuery(r *http.Request, key string) (bool, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, &runtime.ValidationError{Entity: "query", Field: key, Reason: fmt.Sprintf("is %q, must be true or false", s)}
	}
	return b, nil
}

// idsWrite is a PATCH or DELETE on /api/<entity>s/{id}/<field> whose body is
// an array of ids: one op, audited with the entity's state before and after.
func (c *adminCore) idsWrite(w http.ResponseWriter, r *http.Request, call *adminCall, entity, field, action string,
	state func(string) func(*authz.Document) any, op func(string, []string) authz.Op) error {
	id := r.PathValue("id")
	ids, err := c.idList(w, r, entity, field)
	if err != nil {
		return err
	}
	res, err := c.apply(r, call, func(*authz.Model) (adminChange, error) {
		return adminChange{action: action, entity: entity, id: id, state: state(id), ops: []authz.Op{op(id, ids)}}, nil
	})
	if err != nil {
		return err
	}
	return noContent(w, res)
}
