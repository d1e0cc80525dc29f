package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// Try a login: an operator edits a login event (prefilled from the sample
// events) and runs it through the serving pipeline in dry-run mode — the
// pipeline logins use right now, with the same rules, store and policy
// cache — and sees the decision, the claims of both tokens, the scope and
// metadata patches and the per-rule trace with timings. Nothing is
// persisted, audited, counted in the hooks' metrics or put in a replay
// cache: the dry run calls the pipeline directly (hooks.Reloader.DryRun →
// runtime.Pipeline.DryRun), not a hook.

// DryRunner runs an event through the serving pipeline without persisting
// anything (*hooks.Reloader).
type DryRunner interface {
	DryRun(ctx context.Context, ev *runtime.Event) (*runtime.Result, error)
}

// TryLoginTimeout bounds one dry run (the pipeline's own budget is
// usually far shorter).
const TryLoginTimeout = 10 * time.Second

// sampleEvents are copies of samples/events (TestTryLoginSamples keeps
// them equal): the binary has no repository to read them from.
//
//go:embed events/*.json
var sampleEvents embed.FS

// DefaultSample is the event the page starts with.
const DefaultSample = "employee.json"

func (d *Dashboard) tryLoginPage() Page {
	return Page{Name: "trylogin", Title: "Try a login", Href: Prefix + "try-login", Routes: []Route{
		{Method: http.MethodGet, Path: Prefix + "try-login", Handle: d.tryLoginShow},
		// A dry run changes nothing, but it runs the configured rules (which
		// may call out to allowed hosts) on the operator's input: it takes
		// the write scope, as every POST does.
		{Method: http.MethodPost, Path: Prefix + "try-login", Scope: radmin.ScopeWrite, MaxBody: runtime.MaxEventBytes + 64<<10, Handle: d.tryLoginRun},
	}}
}

type claimRow struct{ Name, Value string }

type traceRow struct {
	Rule, Kind, Vote, Duration, Error string
	Skipped                           bool
	Log                               []string
}

type tryLoginData struct {
	Samples []string
	Sample  string
	Event   string
	// Available is false when no pipeline serves (no hooks section).
	Available bool
	Ran       bool
	Result    *runtime.Result
	Decision  string
	IDClaims  []claimRow
	ATClaims  []claimRow
	AppPatch  string
	UserPatch string
	Authz     string
	Trace     []traceRow
	Total     string
}

func (d *Dashboard) dryRunner() DryRunner { return d.cfg.TryLogin }

// sampleNames lists the embedded sample events.
func sampleNames() []string {
	entries, _ := fs.ReadDir(sampleEvents, "events")
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// ParseSample reads the sample query value: one of the embedded events.
func ParseSample(s string) (string, error) {
	if s == "" {
		return DefaultSample, nil
	}
	if !slices.Contains(sampleNames(), s) {
		return "", fieldError("try a login", "sample", fmt.Sprintf("is %q, not one of the sample events (%s)", clip(s), strings.Join(sampleNames(), ", ")))
	}
	return s, nil
}

func (d *Dashboard) tryLoginShow(w http.ResponseWriter, r *http.Request, c *Call) error {
	data := tryLoginData{Samples: sampleNames(), Available: d.dryRunner() != nil}
	name, err := ParseSample(r.URL.Query().Get("sample"))
	if err != nil {
		data.Sample, data.Event = DefaultSample, readSample(DefaultSample)
		d.Render(w, c, errorStatus(err), "trylogin", "Try a login", data, queryError("sample", r, err, nil))
		return nil
	}
	data.Sample, data.Event = name, readSample(name)
	q, err := ParseUserQuery(r)
	if err != nil {
		d.Render(w, c, errorStatus(err), "trylogin", "Try a login", data, queryError("sample", r, err, nil))
		return nil
	}
	if q.User != "" {
		// From the user view: the sample as this user's login at its client.
		data.Event = eventFor(data.Event, q)
	}
	d.Render(w, c, http.StatusOK, "trylogin", "Try a login", data, nil)
	return nil
}

// eventFor is the sample event with the user view's user, client and
// audience in it (the sample's own client name and metadata go: the store
// fills them in for the client, as at a login from Hydra).
func eventFor(sample string, q userQuery) string {
	var ev map[string]any
	if json.Unmarshal([]byte(sample), &ev) != nil {
		return sample
	}
	obj := func(k string) map[string]any {
		m, _ := ev[k].(map[string]any)
		if m == nil {
			m = map[string]any{}
			ev[k] = m
		}
		return m
	}
	obj("user")["user_id"] = q.User
	ev["client"] = map[string]any{"client_id": q.Client}
	if q.Audience != "" {
		obj("transaction")["audience"] = q.Audience
	}
	if q.Connection != "" {
		obj("connection")["name"] = q.Connection
	}
	if q.Groups != "" {
		var groups []string
		for _, g := range strings.Split(q.Groups, ",") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		obj("user")["groups"] = groups
	}
	return indentJSON(ev)
}

func readSample(name string) string {
	b, err := sampleEvents.ReadFile(path.Join("events", name))
	if err != nil {
		return "{}"
	}
	return string(b)
}

func (d *Dashboard) tryLoginRun(w http.ResponseWriter, r *http.Request, c *Call) error {
	data := tryLoginData{Samples: sampleNames(), Available: d.dryRunner() != nil}
	refuse := func(err error) error {
		d.Render(w, c, errorStatus(err), "trylogin", "Try a login", data, FormError("event", r, err, map[string]string{"event": "event"}))
		return nil
	}
	if err := parseForm(r); err != nil {
		return refuse(err)
	}
	data.Sample = r.PostForm.Get("sample")
	data.Event = r.PostForm.Get("event")
	if strings.TrimSpace(data.Event) == "" {
		return refuse(fieldError("try a login", "event", "is empty: paste a login event (JSON)"))
	}
	ev, err := runtime.DecodeEvent([]byte(data.Event))
	if err != nil {
		return refuse(fieldError("try a login", "event", err.Error()))
	}
	runner := d.dryRunner()
	if runner == nil {
		return refuse(fmt.Errorf("no login pipeline is serving on this server: %w", runtime.ErrUnavailable))
	}
	ctx, cancel := context.WithTimeout(r.Context(), TryLoginTimeout)
	defer cancel()
	t0 := time.Now()
	res, err := runner.DryRun(ctx, ev)
	total := time.Since(t0)
	if err != nil {
		return refuse(err)
	}
	fillResult(&data, res, total)
	d.Render(w, c, http.StatusOK, "trylogin", "Try a login", data, nil)
	return nil
}

func fillResult(data *tryLoginData, res *runtime.Result, total time.Duration) {
	data.Ran, data.Result, data.Total = true, res, fmtDuration(total)
	dec := res.Decision
	if dec.Allowed {
		data.Decision = "allowed"
	} else {
		data.Decision = "denied"
		if dec.Rule != "" {
			data.Decision += " by " + dec.Rule
		}
		data.Decision += fmt.Sprintf(" (%s): %s", dec.Code, dec.Reason)
	}
	rows := func(cl runtime.Claims) []claimRow {
		out := make([]claimRow, len(cl))
		for i, x := range cl {
			out[i] = claimRow{Name: x.Name, Value: compactJSON(x.Value)}
		}
		return out
	}
	data.IDClaims, data.ATClaims = rows(res.IDTokenClaims), rows(res.AccessTokenClaims)
	if len(res.AppMetadata) > 0 {
		data.AppPatch = indentJSON(res.AppMetadata)
	}
	if len(res.UserMetadata) > 0 {
		data.UserPatch = indentJSON(res.UserMetadata)
	}
	if a := res.Authorization; a != nil {
		data.Authz = compactJSON(a)
	}
	for _, t := range res.Trace {
		row := traceRow{Rule: t.Rule, Kind: t.Kind, Vote: t.Vote.String(), Duration: fmtDuration(t.Duration), Error: t.Error, Skipped: t.Skipped}
		for _, l := range t.Log {
			row.Log = append(row.Log, fmt.Sprintf("%s: %s", l.Level, l.Msg))
		}
		data.Trace = append(data.Trace, row)
	}
}

// fmtDuration shows a rule's time readably: µs below a millisecond.
func fmtDuration(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// compactJSON is v as one line of JSON.
func compactJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(b.String())
}
