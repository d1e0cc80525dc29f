package dashboard

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	cssRuleRe = regexp.MustCompile(`([^{}]+)\{([^{}]*)\}`)
	cssDeclRe = regexp.MustCompile(`(?:^|;)\s*([a-z-]+)\s*:\s*([^;]+)`)
	cssVarRe  = regexp.MustCompile(`var\((--[a-z0-9-]+)\)`)
	hexRe     = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
)

// luminance is the WCAG relative luminance of a #rgb / #rrggbb colour.
func luminance(t *testing.T, hex string) float64 {
	t.Helper()
	m := hexRe.FindStringSubmatch(hex)
	if m == nil {
		t.Fatalf("not a hex colour: %q", hex)
	}
	h := m[1]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	var l [3]float64
	for i := range 3 {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			l[i] = c / 12.92
		} else {
			l[i] = math.Pow((c+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// Every text colour of the stylesheet meets WCAG AA (4.5:1) on the
// background it is drawn on: its rule's own background, else both page
// backgrounds (white and the header/table-head grey). Borders of form
// controls and the focus ring meet the 3:1 of non-text contrast. A colour
// change in app.css that breaks this fails here.
func TestStylesheetContrast(t *testing.T) {
	css, err := staticFS.ReadFile("static/app.css")
	if err != nil {
		t.Fatal(err)
	}
	src := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(string(css), "")
	vars := map[string]string{}
	type rule struct{ sel, color, bg, outline, border string }
	var rules []rule
	for _, m := range cssRuleRe.FindAllStringSubmatch(src, -1) {
		r := rule{sel: strings.TrimSpace(m[1])}
		for _, d := range cssDeclRe.FindAllStringSubmatch(m[2], -1) {
			name, val := d[1], strings.TrimSpace(d[2])
			if strings.HasPrefix(name, "-") {
				continue
			}
			switch name {
			case "color":
				r.color = val
			case "background":
				r.bg = val
			case "outline":
				r.outline = val
			case "border":
				r.border = val
			}
		}
		if r.sel == ":root" {
			for _, d := range regexp.MustCompile(`(--[a-z0-9-]+)\s*:\s*([^;]+)`).FindAllStringSubmatch(m[2], -1) {
				vars[d[1]] = strings.TrimSpace(d[2])
			}
		}
		rules = append(rules, r)
	}
	resolve := func(v string) string {
		return cssVarRe.ReplaceAllStringFunc(v, func(s string) string { return vars[cssVarRe.FindStringSubmatch(s)[1]] })
	}
	// lastHex is the colour of a shorthand such as "3px solid #1f5fbf".
	lastHex := func(v string) string {
		f := strings.Fields(resolve(v))
		for i := len(f) - 1; i >= 0; i-- {
			if hexRe.MatchString(f[i]) {
				return f[i]
			}
		}
		return ""
	}
	if vars["--bg2"] == "" || vars["--fg"] == "" {
		t.Fatalf("no colour variables in app.css: %v", vars)
	}
	pageBGs := []string{"#fff", vars["--bg2"]}
	checked := 0
	for _, r := range rules {
		if r.color != "" && r.color != "inherit" {
			fg := resolve(r.color)
			bgs := pageBGs
			if bg := resolve(r.bg); hexRe.MatchString(bg) {
				bgs = []string{bg}
			} else if fg == "#fff" {
				t.Errorf("%s: white text without its own background", r.sel)
				continue
			}
			for _, bg := range bgs {
				checked++
				if c := contrast(t, fg, bg); c < 4.5 {
					t.Errorf("%s: text %s on %s has contrast %.2f, below 4.5", r.sel, fg, bg, c)
				}
			}
		}
		if r.outline != "" {
			if o := lastHex(r.outline); o != "" {
				checked++
				if c := contrast(t, o, "#fff"); c < 3 {
					t.Errorf("%s: focus ring %s on white has contrast %.2f, below 3", r.sel, o, c)
				}
			}
		}
		if strings.Contains(r.sel, "input[type=text]") && r.border != "" {
			checked++
			if c := contrast(t, lastHex(r.border), "#fff"); c < 3 {
				t.Errorf("%s: control border has contrast %.2f on white, below 3", r.sel, c)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d colour pairs checked: the stylesheet parser lost its rules", checked)
	}
}

// Keyboard use: every page starts with a skip link to the main landmark,
// no element takes a positive tabindex (which reorders focus), nothing is
// made clickable that the keyboard cannot reach (a role="button" or a
// click target that is not a native control), and every link has text.
func TestPagesWorkByKeyboard(t *testing.T) {
	f := newFixture(t, withPlatform(t, prometheus.NewRegistry()))
	b := f.browser(t).signIn(f.all)
	posTab := regexp.MustCompile(`tabindex="[1-9]`)
	fakeButton := regexp.MustCompile(`<(div|span|td|li)\b[^>]*(role="button"|onclick)`)
	emptyLink := regexp.MustCompile(`<a\b[^>]*>\s*</a>`)
	for _, p := range []string{"groups", "groups/g-eng", "groups/g-plat", "roles", "roles/r-editor", "permissions/p-write",
		"applications", "applications/portal-client", "audit", "keys", "rules", "users", "users?user=auth0%7Calice", "try-login", "import"} {
		body := b.get(Prefix + p).body
		if !strings.Contains(body, `<a class="skip" href="#main">`) || !strings.Contains(body, `<main id="main" tabindex="-1">`) {
			t.Errorf("%s: no skip link to the main landmark", p)
		}
		for _, re := range []*regexp.Regexp{posTab, fakeButton, emptyLink} {
			if m := re.FindString(body); m != "" {
				t.Errorf("%s: %s", p, m)
			}
		}
	}
}
