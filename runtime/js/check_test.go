package js

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestCheckFiles(t *testing.T) {
	t.Parallel()
	bad := writeFile(t, "bad.js", "function (user, context, callback) {\n  // api.redirect in a comment is not a use\n  context.multifactor = { provider: 'any' };\n  callback(null, user, context);\n}\n")
	good := filepath.Join("testdata", "corpus", "rules", "roles.js")
	reports := CheckFiles([]string{good, bad, filepath.Join(t.TempDir(), "missing.js")})
	if len(reports) != 3 {
		t.Fatalf("%d reports", len(reports))
	}
	if !reports[0].OK() || reports[0].Style != StyleRules {
		t.Errorf("roles.js: %+v", reports[0])
	}
	if reports[1].OK() || len(reports[1].Unsupported()) != 1 || reports[1].Unsupported()[0].API != "context.multifactor" || reports[1].Unsupported()[0].Line != 3 {
		t.Errorf("bad.js: %+v", reports[1])
	}
	if !errors.Is(reports[2].Err, runtime.ErrNotFound) {
		t.Errorf("missing.js: %v", reports[2].Err)
	}
	var buf bytes.Buffer
	if err := WriteReports(&buf, reports); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"roles.js: Auth0 Rule", "auth0.users.updateAppMetadata  supported", "line 3  context.multifactor", "UNSUPPORTED", "needs changes: 1 unsupported API(s)", "missing.js: error:"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

// FuzzAnalyze: the static check reads any text without panicking and
// reports lines inside the file.
func FuzzAnalyze(f *testing.F) {
	f.Add("exports.onExecutePostLogin = async (event, api) => { api.redirect.sendUserTo('x') }")
	f.Add("function (user, context, callback) { /* unclosed")
	f.Add("function (u, c, cb) { const s = 'it\\'s'; require(`request`); }")
	f.Fuzz(func(t *testing.T, src string) {
		rep, err := Analyze(src)
		if err != nil {
			return
		}
		lines := strings.Count(src, "\n") + 1
		for _, u := range rep.APIs {
			if u.Line < 1 || u.Line > lines {
				t.Fatalf("API %s on line %d of %d", u.API, u.Line, lines)
			}
		}
	})
}
