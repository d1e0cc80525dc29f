package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// Limits of the admin API.
const (
	DefaultMaxBody   = 1 << 20  // one entity or a list of ids
	DefaultMaxImport = 64 << 20 // a whole extension document
)

// Config wires the admin API.
type Config struct {
	// Service does the writes (with their audit) and the reads.
	Service *radmin.Service
	Keys    hooks.AdminKeys
	// Profiles, when set, lets GET /api/export?full=true include user
	// profiles.
	Profiles authz.ProfileLister
	Log      *slog.Logger
	// MaxBody and MaxImport limit request bodies (0: the defaults above).
	MaxBody   int64
	MaxImport int64
	// ConfigClients are the ids of the token endpoint's configured clients
	// (exchange.clients): /api/clients refuses to register them.
	ConfigClients []string
}

// API serves /api/. Mount it with Register on the server's mux, or
// serve it directly (it routes by itself).
type API struct {
	core   *adminCore
	routes []adminRoute
	mux    *http.ServeMux
}

// adminCore is what every resource handler shares.
type adminCore struct {
	svc       *radmin.Service
	store     radmin.Store
	keys      hooks.AdminKeys
	profiles  authz.ProfileLister
	log       *slog.Logger
	maxBody   int64
	maxImport int64
	// configClients are ids /api/clients refuses (Config.ConfigClients).
	configClients []string
}

// adminCall is one authenticated request.
type adminCall struct {
	key   radmin.Key
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

// RouteInfo describes one operation of the admin API.
type RouteInfo struct {
	Method, Pattern, Scope string
}

// New checks cfg and builds the router.
func New(cfg Config) (*API, error) {
	if cfg.Service == nil || cfg.Keys == nil {
		return nil, fmt.Errorf("admin API: Service and Keys are required: %w", runtime.ErrInvalid)
	}
	c := &adminCore{
		svc: cfg.Service, store: cfg.Service.Store(), keys: cfg.Keys, profiles: cfg.Profiles,
		log: cfg.Log, maxBody: cfg.MaxBody, maxImport: cfg.MaxImport, configClients: cfg.ConfigClients,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBody
	}
	if c.maxImport <= 0 {
		c.maxImport = DefaultMaxImport
	}
	a := &API{core: c, mux: http.NewServeMux()}
	a.routes = adminRoutes(c)
	a.Register(a.mux)
	return a, nil
}

// Routes lists the operations (method, path pattern, scope).
func (a *API) Routes() []RouteInfo {
	out := make([]RouteInfo, len(a.routes))
	for i, rt := range a.routes {
		out[i] = RouteInfo{Method: rt.method, Pattern: rt.pattern, Scope: rt.scope}
	}
	return out
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Register adds every admin path to mux, one handler per path that
// dispatches on the method (so a wrong method gets a JSON 405 with Allow),
// plus a JSON 404 for unknown paths under /api/. More specific patterns
// registered by others (the extension's policy endpoint,
// POST /api/users/{user_id}/policy/{client_id}) keep precedence.
func (a *API) Register(mux *http.ServeMux) {
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
		hooks.WriteError(w, fmt.Errorf("no admin endpoint %s %s: %w", r.Method, r.URL.Path, runtime.ErrNotFound))
	})
}

// ServerRoutes returns the admin API as routes of the server's table (one
// per path, imports with their larger body limit), including the JSON 404 for
// unknown /api/ paths.
func (a *API) ServerRoutes() []hooks.Route {
	var out []hooks.Route
	seen := map[string]bool{}
	for _, rt := range a.routes {
		if seen[rt.pattern] {
			continue
		}
		seen[rt.pattern] = true
		limit := a.core.maxBody
		if rt.scope == radmin.ScopeImport {
			limit = a.core.maxImport
		}
		out = append(out, hooks.Route{Pattern: rt.pattern, Handler: a.mux, MaxBody: limit})
	}
	return append(out, hooks.Route{Pattern: "/api/", Handler: a.mux, MaxBody: a.core.maxBody})
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
		hooks.WriteJSON(w, http.StatusMethodNotAllowed, hooks.ErrorBody{Error: "method_not_allowed",
			Description: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, p.allow)})
		return
	}
	c := &adminCall{reqID: r.Header.Get("X-Request-Id")}
	if !validRequestID(c.reqID) {
		c.reqID = newTraceID()
	}
	if local, ok := r.Context().Value(localCaller{}).(radmin.Key); ok && rt.scope != "" {
		// In-process caller (Local): already identified, scope still applies.
		if !local.Has(rt.scope) {
			hooks.WriteError(w, fmt.Errorf("admin key %q lacks the %q scope: %w", local.Name, rt.scope, runtime.ErrForbidden))
			return
		}
		c.key = local
	} else if rt.scope != "" {
		key, err := hooks.AuthenticateAdmin(r, p.core.keys, rt.scope)
		if err != nil {
			if errors.Is(err, runtime.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="claimsmith-admin"`)
			}
			hooks.WriteError(w, err)
			return
		}
		c.key = key
	}
	err := checkPathIDs(r, rt.pattern)
	if err == nil {
		err = rt.h(w, r, c)
	}
	if err != nil {
		lvl := slog.LevelInfo
		if st, _ := hooks.StatusOf(err); st >= 500 {
			lvl = slog.LevelError
		}
		p.core.log.Log(r.Context(), lvl, "admin request failed", "method", r.Method, "path", r.URL.Path,
			"key", c.key.Name, "request_id", c.reqID, "err", err)
		hooks.WriteError(w, err)
	}
}

// newTraceID returns a random 128-bit hex id for a request whose caller gave
// none, so its audit record can be found in the logs.
func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
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

// readJSON is the one reader of admin request bodies: the media type must
// be application/json with no charset but UTF-8 (415 otherwise: JSON is
// UTF-8, and reading UTF-16 as UTF-8 would garble every id), the body at
// most limit bytes (413), and valid UTF-8 (400: encoding/json would turn a
// bad byte into U+FFFD and so write an id other than the one sent).
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, entity string) ([]byte, error) {
	if err := hooks.RequireJSON(r); err != nil {
		return nil, err
	}
	ct := r.Header.Get("Content-Type")
	if _, params, err := mime.ParseMediaType(ct); err == nil {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, fmt.Errorf("%w: Content-Type %q: the admin API reads JSON in UTF-8 only", hooks.ErrUnsupportedMediaType, ct)
		}
	}
	body, err := hooks.ReadBody(w, r, limit)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(body) {
		return nil, &runtime.ValidationError{Entity: entity, Field: "body", Reason: "is not valid UTF-8"}
	}
	return body, nil
}

// decodeBody reads a JSON body strictly (unknown fields, trailing data and
// type mismatches are 400s naming the field) into dst.
func (c *adminCore) decodeBody(w http.ResponseWriter, r *http.Request, entity string, dst any) error {
	body, err := readJSON(w, r, c.maxBody, entity)
	if err != nil {
		return err
	}
	return decodeStrict(body, entity, dst)
}

// checkPathIDs applies authz.CheckID to every wildcard of the route's
// pattern ({id}, {client_id}): the mux has already percent-decoded them, so
// "%FF" arrives as a byte that is not UTF-8.
func checkPathIDs(r *http.Request, pattern string) error {
	for rest := pattern; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil
		}
		name := rest[i+1 : i+j]
		if err := authz.CheckID("path", name, r.PathValue(name)); err != nil {
			return err
		}
		rest = rest[i+j+1:]
	}
}

// decodeStrict is the decoder of every admin request body.
func decodeStrict(body []byte, entity string, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &runtime.ValidationError{Entity: entity, Field: "body", Reason: "is empty: a JSON body is required"}
	}
	// encoding/json decodes null into anything as "no change", which made
	// PUT with a null body write a default entity.
	if string(bytes.TrimSpace(body)) == "null" {
		return &runtime.ValidationError{Entity: entity, Field: "body", Reason: "is null: a JSON value is required"}
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

// listQuery is the paging and filter of every list (runtime/admin's).
type listQuery = radmin.ListQuery

// parseListQuery reads page, per_page, q, field and name.
func parseListQuery(r *http.Request) (listQuery, error) {
	v := r.URL.Query()
	lq := listQuery{PerPage: radmin.DefaultPerPage, Q: v.Get("q"), Field: v.Get("field"), Name: v.Get("name")}
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
	if err := num("page", 0, 1<<30, &lq.Page); err != nil {
		return lq, err
	}
	if err := num("per_page", 1, radmin.MaxPerPage, &lq.PerPage); err != nil {
		return lq, err
	}
	return lq, lq.Check()
}

// listPage is the envelope of every list: the items under the resource's
// key (as the extension's {"groups": [...], "total": n}), the total after
// filtering, and the page asked for.
func listPage[T any](key string, items []T, lq listQuery) map[string]any {
	return envelope(key, radmin.Paginate(items, lq, 0))
}

// writePage answers a list query of the service (304 when If-None-Match
// names its revision).
func writePage[T any](w http.ResponseWriter, r *http.Request, key string, p radmin.Page[T], err error) error {
	if err != nil {
		return err
	}
	if notModified(w, r, p.Revision) {
		return nil
	}
	hooks.WriteJSON(w, http.StatusOK, envelope(key, p))
	return nil
}

func envelope[T any](key string, p radmin.Page[T]) map[string]any {
	return map[string]any{key: p.Items, "total": p.Total, "page": p.Page, "per_page": p.PerPage}
}

// ---- writes ----

// audited is how a write's entity appears in its audit record: the records
// it needs (beyond the write's own) and how to render it from them.
type audited struct {
	fp     authz.Footprint
	render func(*authz.Document) any
}

// of renders the entity from doc (nil when absent).
func (a audited) of(doc *authz.Document) any { return a.render(doc) }

// adminChange is what a write does: its ops, and how to describe it in the
// audit log.
type adminChange struct {
	action string // e.g. "group.create"
	entity string
	id     string
	ops    []authz.Op
	state  audited
}

func (ch adminChange) change() radmin.Change {
	return radmin.Change{Action: ch.action, Entity: ch.entity, ID: ch.id, Ops: ch.ops,
		Reads: ch.state.fp, State: ch.state.render}
}

// writeResult is a committed write.
type writeResult struct {
	revision uint64
	after    *authz.Document // the records the write touched, as it left them
}

// write commits a change through the service with the request's If-Match.
func (c *adminCore) write(r *http.Request, call *adminCall, ch adminChange) (writeResult, error) {
	return c.commit(r, call, ch.change())
}

// writeWith commits a change whose ops depend on the current records named
// by reads: build makes it from them (and may run more than once).
func (c *adminCore) writeWith(r *http.Request, call *adminCall, reads authz.Footprint, build func(view *authz.Document) (adminChange, error)) (writeResult, error) {
	return c.commit(r, call, radmin.Change{Reads: reads, Build: func(view *authz.Document, out *radmin.Change) error {
		ch, err := build(view)
		if err != nil {
			return err
		}
		built := ch.change()
		built.Reads.Add(out.Reads)
		*out = built
		return nil
	}})
}

func (c *adminCore) commit(r *http.Request, call *adminCall, ch radmin.Change) (writeResult, error) {
	expected, pinned, err := ifMatch(r)
	if err != nil {
		return writeResult{}, err
	}
	var m radmin.IfMatch
	if pinned {
		m = radmin.Expect(expected)
	}
	res, err := c.svc.Apply(r.Context(), radmin.Caller{KeyID: call.key.ID, KeyName: call.key.Name, RequestID: call.reqID}, ch, m)
	if err != nil {
		return writeResult{}, err
	}
	return writeResult{revision: res.Revision, after: res.After}, nil
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
	hooks.WriteJSON(w, status, v)
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
	state func(string) audited, op func(string, []string) authz.Op) error {
	id := r.PathValue("id")
	ids, err := c.idList(w, r, entity, field)
	if err != nil {
		return err
	}
	// Audited as what changed (the named ids), not the whole list: a
	// member written to a large group costs what it costs on a small one.
	st := audited{fp: state(id).fp, render: radmin.IDListState(entity, id, field, ids)}
	res, err := c.write(r, call, adminChange{action: action, entity: entity, id: id, state: st, ops: []authz.Op{op(id, ids)}})
	if err != nil {
		return err
	}
	return noContent(w, res)
}
