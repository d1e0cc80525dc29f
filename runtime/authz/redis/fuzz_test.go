package redis

import (
	"errors"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
)

// FuzzFoldKey: the group-name index agrees with strings.EqualFold, the rule
// the ops use for name clashes, on any pair of strings.
func FuzzFoldKey(f *testing.F) {
	for _, p := range [][2]string{{"Engineering", "engineering"}, {"K", "\u212a"}, {"ſ", "S"}, {"ß", "SS"}, {"\xff", "\xfe"}, {"a", "b"}, {"Σ", "ς"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if (foldKey(a) == foldKey(b)) != strings.EqualFold(a, b) {
			t.Fatalf("foldKey(%q)=%q foldKey(%q)=%q but EqualFold=%v", a, foldKey(a), b, foldKey(b), strings.EqualFold(a, b))
		}
	})
}

// FuzzDecodeStored: records read back from Redis (shared with other
// programs, possibly edited by hand) decode or fail with ErrInvalid naming
// the entity; never a panic.
func FuzzDecodeStored(f *testing.F) {
	for _, s := range []string{
		`{"_id":"g1","name":"G","nested":["g2"],"x":1}`,
		`{"user_id":"u","app_metadata":{"a":1},"user_metadata":{}}`,
		`["u1","u2"]`, `null`, `{`, ``, `{"_id":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var g authz.Group
		if err := decodeRecord(b, &g, "group", "g1"); err != nil && (!errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), `group "g1"`)) {
			t.Fatalf("group error %v does not name the record", err)
		}
		var members []string
		if err := decodeRecord(b, &members, "group", "g1"); err != nil && !errors.Is(err, runtime.ErrInvalid) {
			t.Fatalf("members error %v", err)
		}
		if p, err := decodeProfile(b, "u"); err == nil && (p.UserID != "u" || p.AppMetadata == nil || p.UserMetadata == nil) {
			t.Fatalf("decoded profile %+v: user id or objects missing", p)
		}
	})
}

// FuzzDecodeLogin: the login script's answer is checked, never trusted.
func FuzzDecodeLogin(f *testing.F) {
	f.Add("7", "tok", "1", "g1", "r1", 5)
	f.Add("x", "", "-1", "", "", 4)
	f.Fuzz(func(t *testing.T, rev, srev, gen, g, r string, n int) {
		res := []any{rev, srev, gen, []any{g}, []any{r}}
		if n >= 0 && n < len(res) {
			res = res[:n]
		}
		lr, err := decodeLogin(res)
		if err != nil {
			return
		}
		if len(lr.groups) != 1 || lr.groups[0] != g || lr.structure != srev {
			t.Fatalf("decoded %+v from %v", lr, res)
		}
	})
}
