package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/claimsmith/claimsmith/hooks"
	adminapi "github.com/claimsmith/claimsmith/hooks/admin"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/admin"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// The data-changing CLI conveniences (groups, roles, permissions, apps)
// speak the admin API in both modes, so validation, answers and audit
// records are the same:
//   - with --server URL --key KEY, over HTTP to a running server;
//   - without, in-process against the data dir: the same admin API
//     (hooks/admin) and admin service run over the configured store through
//     an in-process transport, as the OS user (no credential): writes are
//     audited under the key name "cli:<os user>", and a data dir owned by a
//     running server is refused (owner lock) for writes.

// adminTarget is where admin requests go.
type adminTarget struct {
	server, key string
}

// addTargetFlags adds --server and --key (defaults from the environment).
func addTargetFlags(fs *flag.FlagSet, t *adminTarget) {
	fs.StringVar(&t.server, "server", os.Getenv("CLAIMSMITH_SERVER"), "base URL of a running claimsmith server ($CLAIMSMITH_SERVER); without it the data dir is changed directly")
	fs.StringVar(&t.key, "key", os.Getenv("CLAIMSMITH_ADMIN_KEY"), "admin key for --server ($CLAIMSMITH_ADMIN_KEY)")
}

// adminClient sends admin API requests.
type adminClient struct {
	do    func(*http.Request) (*http.Response, error)
	base  string
	key   string
	close func()
}

// apiError is an error answer of the admin API. It keeps the sentinel of
// its status so exit codes and callers can tell a conflict from a bad input.
type apiError struct {
	Status int
	Code   string
	Desc   string
}

func (e *apiError) Error() string {
	if e.Desc == "" {
		return fmt.Sprintf("%d %s", e.Status, e.Code)
	}
	return e.Desc
}

// Is maps the status back to the runtime sentinels.
func (e *apiError) Is(target error) bool {
	switch e.Status {
	case http.StatusBadRequest:
		return target == runtime.ErrInvalid
	case http.StatusUnauthorized:
		return target == runtime.ErrUnauthenticated
	case http.StatusForbidden:
		return target == runtime.ErrForbidden
	case http.StatusNotFound:
		return target == runtime.ErrNotFound
	case http.StatusConflict:
		return target == runtime.ErrConflict
	}
	return false
}

// openAdminClient returns a client for the target. write says whether the
// command changes data: a direct write takes the data dir's owner lock.
func openAdminClient(ctx context.Context, a *app, t adminTarget, command string, write bool) (*adminClient, error) {
	if t.server != "" {
		u, err := url.Parse(t.server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, &exitError{code: 2, err: fmt.Errorf("--server %q is not an http(s) URL", t.server)}
		}
		if t.key == "" {
			return nil, &exitError{code: 2, err: errors.New("--server needs --key (an admin key: claimsmith admin-key create)")}
		}
		hc := &http.Client{Timeout: 2 * time.Minute}
		return &adminClient{do: hc.Do, base: strings.TrimRight(t.server, "/"), key: t.key, close: func() {}}, nil
	}
	if t.key != "" {
		return nil, &exitError{code: 2, err: errors.New("--key is only used with --server")}
	}
	release := func() {}
	if write {
		r, err := lockForCommand(ctx, a, command)
		if err != nil {
			return nil, err
		}
		release = r
	}
	api, closeStore, err := localAdminAPI(ctx, a, !write)
	if err != nil {
		release()
		return nil, err
	}
	local := &http.Client{Transport: api.Local(admin.Key{ID: "local", Name: cliKeyName(), Scopes: admin.AllScopes()})}
	return &adminClient{do: local.Do, base: "http://data-dir", close: func() { closeStore(); release() }}, nil
}

// noKeys is the key store of direct mode: its caller is the OS user,
// identified in-process, so no bearer key is ever accepted.
type noKeys struct{}

func (noKeys) Authenticate(context.Context, string) (admin.Key, error) {
	return admin.Key{}, fmt.Errorf("direct mode takes no admin keys: %w", runtime.ErrUnauthenticated)
}

func cliKeyName() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return "cli:" + name
}

// localAdminAPI builds the admin service and API over the configured store
// (the data dir's file store, or the Redis store).
func localAdminAPI(ctx context.Context, a *app, readOnly bool) (*adminapi.API, func(), error) {
	st, err := openDataStore(ctx, a, readOnly)
	if err != nil {
		return nil, nil, err
	}
	audit, err := openAuditLog(ctx, a)
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	svc, err := admin.NewService(admin.ServiceConfig{Store: st, Audit: audit, Log: a.log})
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	var configClients []string
	if c, err := a.config(); err == nil {
		configClients = c.Exchange.ConfigClientIDs()
	}
	api, err := adminapi.New(adminapi.Config{Service: svc, Keys: noKeys{}, Profiles: st, Log: a.log, ConfigClients: configClients})
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return api, func() { _ = st.Close() }, nil
}

// call sends one request and decodes a JSON answer into out (when non-nil).
// It returns the answer's ETag.
func (c *adminClient) call(ctx context.Context, method, path string, body any, out any) (string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return "", err
		}
		rd = bytes.NewReader(b)
	}
	return c.callRaw(ctx, method, path, rd, out)
}

func (c *adminClient) callRaw(ctx context.Context, method, path string, body io.Reader, out any) (string, error) {
	return c.callWith(ctx, method, path, body, out, "")
}

// callWith is callRaw with an If-Match revision ("" for none).
func (c *adminClient) callWith(ctx context.Context, method, path string, body io.Reader, out any, ifMatch string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return "", err
	}
	if ifMatch != "" {
		if !strings.HasPrefix(ifMatch, `"`) {
			ifMatch = `"` + ifMatch + `"`
		}
		req.Header.Set("If-Match", ifMatch)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return "", fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if res.StatusCode >= 300 {
		var e hooks.ErrorBody
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return "", &apiError{Status: res.StatusCode, Code: http.StatusText(res.StatusCode), Desc: strings.TrimSpace(string(b))}
		}
		return "", &apiError{Status: res.StatusCode, Code: e.Error, Desc: e.Description}
	}
	if out != nil && len(b) > 0 {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = append((*raw)[:0], b...)
		} else if err := json.Unmarshal(b, out); err != nil {
			return "", fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return res.Header.Get("ETag"), nil
}

// printJSON writes an answer indented, one value per command.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// adminSub is one subcommand of groups, roles, permissions or apps: its
// positional arguments, its flags, and the admin API request it makes.
type adminSub struct {
	name    string
	args    string // usage of the positional arguments, e.g. "GROUP_ID USER_ID..."
	summary string
	min     int  // positional arguments required
	more    bool // more than min allowed
	write   bool
	// setup defines the flags and returns the request builder.
	setup func(fs *flag.FlagSet) func(args []string) (method, path string, body any, err error)
}

// adminRequest is a request without flags.
func adminRequest(method string, path func(args []string) string, body func(args []string) any) func(*flag.FlagSet) func([]string) (string, string, any, error) {
	return func(*flag.FlagSet) func([]string) (string, string, any, error) {
		return func(args []string) (string, string, any, error) {
			var b any
			if body != nil {
				b = body(args)
			}
			return method, path(args), b, nil
		}
	}
}

// esc escapes one path segment (user ids contain "|", client ids may hold
// anything).
func esc(s string) string { return url.PathEscape(s) }

// listFlags adds the paging and filter flags of list commands and returns
// the query string they make.
func listFlags(fs *flag.FlagSet) func() string {
	page := fs.Int("page", 0, "page number, 0-based")
	perPage := fs.Int("per-page", 0, "items per page (server default 100, at most 1000)")
	q := fs.String("q", "", "case-insensitive substring of the name")
	name := fs.String("name", "", "case-insensitive exact name")
	return func() string {
		v := url.Values{}
		if *page > 0 {
			v.Set("page", fmt.Sprint(*page))
		}
		if *perPage > 0 {
			v.Set("per_page", fmt.Sprint(*perPage))
		}
		if *q != "" {
			v.Set("q", *q)
		}
		if *name != "" {
			v.Set("name", *name)
		}
		if len(v) == 0 {
			return ""
		}
		return "?" + v.Encode()
	}
}

// runAdminGroup runs `claimsmith <group> <sub> [flags] args`.
func runAdminGroup(ctx context.Context, a *app, group, intro string, subs []adminSub, args []string) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: claimsmith [--data-dir DIR] %s <command> [--server URL --key KEY] [flags] [args]\n\n%s\nCommands:\n", group, intro)
		for _, s := range subs {
			fmt.Fprintf(w, "  %-40s %s\n", s.name+" "+s.args, s.summary)
		}
		fmt.Fprintf(w, "\nEvery command takes --server URL and --key KEY to work through a running server's\n"+
			"admin API; without them it works on --data-dir directly (refused for changes while a\n"+
			"server owns the data dir). Changes are audited either way. Run 'claimsmith %s <command> -h'\n"+
			"for a command's flags.\n", group)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(a.stdout)
		if len(args) == 0 {
			return &exitError{code: 2}
		}
		return nil
	}
	var sub *adminSub
	for i := range subs {
		if subs[i].name == args[0] {
			sub = &subs[i]
		}
	}
	if sub == nil {
		usage(a.stderr)
		return &exitError{code: 2, err: fmt.Errorf("unknown %s command %q", group, args[0])}
	}
	fs := flag.NewFlagSet(group+" "+sub.name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	var t adminTarget
	addTargetFlags(fs, &t)
	var ifMatch string
	if sub.write {
		fs.StringVar(&ifMatch, "if-match", "", "fail with a conflict unless the store is at this revision (an ETag from an earlier answer)")
	}
	build := sub.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: claimsmith %s %s [flags] %s\n\n%s\n\nFlags:\n", group, sub.name, sub.args, sub.summary)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2, err: err}
	}
	// json.Marshal would send a byte that is not UTF-8 as U+FFFD, i.e.
	// another id than the one typed: refuse it here, as the API would.
	for _, arg := range args[1:] {
		if !utf8.ValidString(arg) {
			return &exitError{code: 2, err: fmt.Errorf("%s %s: argument %q is not valid UTF-8", group, sub.name, arg)}
		}
	}
	for _, arg := range pos {
		if len(arg) > authz.MaxIDBytes {
			return &exitError{code: 2, err: fmt.Errorf("%s %s: an argument of %d bytes is over the %d-byte limit of ids", group, sub.name, len(arg), authz.MaxIDBytes)}
		}
	}
	if n := len(pos); n < sub.min || (!sub.more && n > sub.min) {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("%s %s takes %s", group, sub.name, argCount(sub))}
	}
	method, path, body, err := build(pos)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	c, err := openAdminClient(ctx, a, t, group+" "+sub.name, sub.write)
	if err != nil {
		return err
	}
	defer c.close()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	var out json.RawMessage
	etag, err := c.callWith(ctx, method, path, rd, &out, ifMatch)
	if err != nil {
		return err
	}
	if len(out) > 0 {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "ok: %s %s (revision %s)\n", group, sub.name, strings.Trim(etag, `"`))
	return nil
}

// parseInterleaved parses flags placed before, between or after the
// positional arguments (`groups add-mapping g1 --connection ad`), which the
// flag package alone stops at; everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return append(pos, tail...), nil
}

func argCount(s *adminSub) string {
	if s.args == "" {
		return "no arguments"
	}
	if s.more {
		return fmt.Sprintf("at least %d argument(s): %s", s.min, s.args)
	}
	return fmt.Sprintf("exactly %d argument(s): %s", s.min, s.args)
}

// importViaServer sends a validated document to a running server's
// POST /api/import (scope import), with replace=true when confirmed.
// expect, when non-zero, is sent as If-Match.
func importViaServer(ctx context.Context, a *app, t adminTarget, name string, doc []byte, expect uint64, replace bool) error {
	c, err := openAdminClient(ctx, a, t, "import", true)
	if err != nil {
		return err
	}
	defer c.close()
	ifMatch := ""
	if expect != 0 {
		ifMatch = fmt.Sprint(expect)
	}
	var sum struct {
		Revision     uint64 `json:"revision"`
		Groups       int    `json:"groups"`
		Roles        int    `json:"roles"`
		Permissions  int    `json:"permissions"`
		Applications int    `json:"applications"`
	}
	path := "/api/import"
	if replace {
		path += "?replace=true"
	}
	if _, err := c.callWith(ctx, http.MethodPost, path, bytes.NewReader(doc), &sum, ifMatch); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(a.stdout, "imported %s: %d groups, %d roles, %d permissions, %d applications; server %s at revision %d\n",
		name, sum.Groups, sum.Roles, sum.Permissions, sum.Applications, t.server, sum.Revision)
	return nil
}

// auditDirectImport records an import made directly on the data dir in the
// same audit log the admin API writes, under the OS user's name.
func auditDirectImport(ctx context.Context, a *app, doc *authz.Document, rev uint64) error {
	audit, err := openAuditLog(ctx, a)
	if err != nil {
		return err
	}
	counts := map[string]int{"groups": len(doc.Groups), "roles": len(doc.Roles), "permissions": len(doc.Permissions)}
	if doc.Claimsmith != nil {
		counts["applications"] = len(doc.Claimsmith.Applications)
	}
	after, _ := json.Marshal(counts)
	_, err = audit.Append(ctx, admin.Record{KeyID: "local", KeyName: cliKeyName(), Action: "import", Entity: "document",
		RevisionBefore: rev - 1, RevisionAfter: rev, After: after})
	return err
}
