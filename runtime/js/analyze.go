package js

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Style is how a JavaScript rule is written.
type Style string

const (
	// StyleRules is a classic Auth0 Rule: function (user, context, callback).
	StyleRules Style = "rules"
	// StyleActions is an Auth0 Action module assigning
	// exports.onExecutePostLogin and/or exports.onExecuteCredentialsExchange.
	StyleActions Style = "actions"
)

// APIUse is one Auth0 API a rule file uses.
type APIUse struct {
	API       string `json:"api"`
	Supported bool   `json:"supported"`
	// Line is the first line using it (1-based).
	Line int `json:"line"`
	// Note says what claimsmith does with it, or how to migrate.
	Note string `json:"note,omitempty"`
}

// Report is what Analyze finds in a rule file.
type Report struct {
	Style Style    `json:"style,omitempty"`
	APIs  []APIUse `json:"apis"`
}

// Unsupported returns the uses that fail.
func (r Report) Unsupported() []APIUse {
	var out []APIUse
	for _, u := range r.APIs {
		if !u.Supported {
			out = append(out, u)
		}
	}
	return out
}

const (
	noUI  = "needs Auth0's login pages or sessions; move the step into your identity provider's login flow"
	noNet = "rules get no network; read event.authorization, client metadata or secrets instead, or bundle pure modules with esbuild"
)

// apis are the Auth0 APIs Analyze looks for, most specific first.
var apis = []struct {
	re        *regexp.Regexp
	api       string
	supported bool
	note      string
}{
	{regexp.MustCompile(`\bapi\.idToken\.setCustomClaim\b`), "api.idToken.setCustomClaim", true, "ID-token claim"},
	{regexp.MustCompile(`\bapi\.accessToken\.setCustomClaim\b`), "api.accessToken.setCustomClaim", true, "access-token claim"},
	{regexp.MustCompile(`\bapi\.accessToken\.addScope\b`), "api.accessToken.addScope", true, "adds a scope"},
	{regexp.MustCompile(`\bapi\.accessToken\.removeScope\b`), "api.accessToken.removeScope", true, "removes a scope"},
	{regexp.MustCompile(`\bapi\.access\.deny\b`), "api.access.deny", true, "denies (code access_denied)"},
	{regexp.MustCompile(`\bapi\.user\.setAppMetadata\b`), "api.user.setAppMetadata", true, "app_metadata patch, persisted"},
	{regexp.MustCompile(`\bapi\.user\.setUserMetadata\b`), "api.user.setUserMetadata", true, "user_metadata patch, persisted"},
	{regexp.MustCompile(`\bapi\.cache\.(get|set|delete)\b`), "api.cache", true, "per rule and trigger, Auth0's limits (in-process: not shared between nodes)"},
	{regexp.MustCompile(`\bapi\.redirect\b`), "api.redirect", false, noUI},
	{regexp.MustCompile(`\bapi\.multifactor\b`), "api.multifactor", false, noUI},
	{regexp.MustCompile(`\bapi\.authentication\b`), "api.authentication", false, noUI},
	{regexp.MustCompile(`\bapi\.samlResponse\b`), "api.samlResponse", false, "claimsmith issues no SAML responses"},
	{regexp.MustCompile(`\bevent\.secrets\b`), "event.secrets", true, "from the environment variables named in `secrets`"},
	{regexp.MustCompile(`\bevent\.(user|client|connection|request|transaction|authorization|stats)\b`), "event", true, "the login event"},
	{regexp.MustCompile(`\bauth0\.users\.updateAppMetadata\b`), "auth0.users.updateAppMetadata", true, "app_metadata patch, persisted"},
	{regexp.MustCompile(`\bauth0\.users\.updateUserMetadata\b`), "auth0.users.updateUserMetadata", true, "user_metadata patch, persisted"},
	{regexp.MustCompile(`\bauth0\.(accessToken|domain|baseUrl)\b`), "auth0 management API", false, noNet},
	{regexp.MustCompile(`\bcontext\.(idToken|accessToken)\b`), "context.idToken/accessToken", true, "namespaced keys become claims; accessToken.scope edits scopes"},
	{regexp.MustCompile(`\bcontext\.multifactor\b`), "context.multifactor", false, noUI},
	{regexp.MustCompile(`\bcontext\.redirect\b`), "context.redirect", false, noUI},
	{regexp.MustCompile(`\bcontext\.(sso|sessionID|primaryUser)\b`), "context.sso/sessionID/primaryUser", false, noUI},
	{regexp.MustCompile(`\bUnauthorizedError\b`), "UnauthorizedError", true, "denies with code unauthorized"},
	{regexp.MustCompile(`\bconfiguration\.`), "configuration", true, "from the environment variables named in `secrets` and the entry's config"},
	{regexp.MustCompile(`\bglobal\.`), "global", true, "per engine instance, not shared between instances or nodes"},
	{regexp.MustCompile(`\bconsole\.(log|info|warn|error|debug)\b`), "console.log", true, "lines go to the rule's trace"},
	{regexp.MustCompile(`\brequire\(\s*['"](request|axios|auth0|node-fetch|got|superagent|https?|net|tls|dns|fs|child_process|request-promise|aws-sdk|mongodb|pg|mysql|redis)(@[^'"]*)?['"]\s*\)`), "require (network module)", false, noNet},
	{regexp.MustCompile(`\brequire\(`), "require", false, "no modules at run time: bundle pure npm modules into the file with esbuild (--bundle --platform=neutral --format=cjs)"},
	{regexp.MustCompile(`\bfetch\(`), "fetch", false, noNet},
	{regexp.MustCompile(`\bset(Timeout|Interval|Immediate)\(`), "timers", false, "timers cannot outlive the call; use promises that settle within it"},
}

var (
	actionsExport = regexp.MustCompile(`\bexports\.onExecute(PostLogin|CredentialsExchange)\s*=`)
	rulesFunction = regexp.MustCompile(`^(async\s+)?function\b`)
)

// Analyze detects a rule file's style and lists the Auth0 APIs it uses.
// It reads the source as text (comments and strings excluded), so it sees
// what a reviewer would; a use it cannot see still fails when called.
func Analyze(src string) (Report, error) {
	code := stripCommentsAndStrings(src)
	var rep Report
	switch {
	case actionsExport.MatchString(code):
		rep.Style = StyleActions
	case rulesFunction.MatchString(strings.TrimSpace(code)):
		rep.Style = StyleRules
	default:
		return rep, fmt.Errorf("neither an Auth0 Rule (a file that is one function (user, context, callback)) nor an Action (a module assigning exports.onExecutePostLogin or exports.onExecuteCredentialsExchange)")
	}
	seen := map[string]bool{}
	requireNet := false
	for _, a := range apis {
		loc := a.re.FindStringIndex(code)
		if loc == nil {
			continue
		}
		// A network require was already reported; do not report it twice.
		if a.api == "require" && requireNet {
			continue
		}
		if a.api == "require (network module)" {
			requireNet = true
		}
		if seen[a.api] {
			continue
		}
		seen[a.api] = true
		rep.APIs = append(rep.APIs, APIUse{API: a.api, Supported: a.supported, Line: 1 + strings.Count(code[:loc[0]], "\n"), Note: a.note})
	}
	sort.SliceStable(rep.APIs, func(i, j int) bool { return rep.APIs[i].Line < rep.APIs[j].Line })
	return rep, nil
}

// stripCommentsAndStrings blanks comments and the contents of string
// literals (keeping line breaks, so lines still count), except the module
// names of require calls, which must stay visible.
func stripCommentsAndStrings(src string) string {
	b := []byte(src)
	out := make([]byte, len(b))
	copy(out, b)
	blank := func(i int) {
		if out[i] != '\n' {
			out[i] = ' '
		}
	}
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '/':
			for ; i < len(b) && b[i] != '\n'; i++ {
				blank(i)
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			j := i
			for ; j < len(b) && !(b[j] == '*' && j+1 < len(b) && b[j+1] == '/'); j++ {
				blank(j)
			}
			if j+1 < len(b) {
				blank(j)
				blank(j + 1)
			}
			i = j + 1
		case b[i] == '\'' || b[i] == '"' || b[i] == '`':
			q := b[i]
			keep := strings.HasSuffix(strings.TrimRight(string(b[:i]), " \t"), "require(")
			j := i + 1
			for ; j < len(b) && b[j] != q; j++ {
				if b[j] == '\\' && j+1 < len(b) {
					if !keep {
						blank(j)
					}
					j++
				}
				if !keep {
					blank(j)
				}
			}
			i = j
		}
	}
	return string(out)
}
