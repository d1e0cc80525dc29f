package cache

import (
	"reflect"
	"testing"

	"github.com/claimsmith/claimsmith/runtime/authz"
)

// FuzzDecodeEntry: a cache value read from Redis either decodes to a policy
// that re-encodes to the same policy, or is rejected; it never panics.
func FuzzDecodeEntry(f *testing.F) {
	for _, s := range []string{
		`{"g":["a"],"r":["b"],"p":["c"]}`,
		`{"g":[],"r":[],"p":[]}`,
		`{"g":["evil"]}`,
		`{"g":[],"r":[],"p":[],"x":1}`,
		`{"g":[1],"r":[],"p":[]}`,
		`{"g":[],"r":[],"p":[]} {}`,
		`null`, `[]`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeEntry(b)
		if err != nil {
			return
		}
		q, err := decodeEntry(encodeEntry(p))
		if err != nil {
			t.Fatalf("re-decode of %q: %v", b, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed %+v to %+v", p, q)
		}
	})
}

func TestDecodeEntryRejects(t *testing.T) {
	for _, s := range []string{`{"g":["evil"]}`, `{"g":[],"r":[],"p":[],"x":1}`, `null`, `{"g":[],"r":[],"p":[]} {}`} {
		if _, err := decodeEntry([]byte(s)); err == nil {
			t.Errorf("decodeEntry(%s) accepted", s)
		}
	}
	p, err := decodeEntry(encodeEntry(authz.Policy{Groups: []string{"a"}}))
	if err != nil || len(p.Groups) != 1 || p.Roles == nil {
		t.Fatalf("round trip: %+v %v", p, err)
	}
}

// FuzzCanonicalKey: queries that differ only in IdP group order or
// duplicates share a key; different users never do.
func FuzzCanonicalKey(f *testing.F) {
	f.Add("u", "c", "a", "conn", "x", "y")
	f.Add("u\x00", "c", "", "conn", "", "x")
	f.Fuzz(func(t *testing.T, user, client, aud, conn, g1, g2 string) {
		q := authz.PolicyQuery{UserID: user, ClientID: client, Audience: aud, Connection: conn, IdPGroups: []string{g1, g2, g1}}
		r := q
		r.IdPGroups = []string{g2, g1}
		if canonicalKey(q) != canonicalKey(r) {
			t.Fatalf("order/duplicates changed the key: %q vs %q", canonicalKey(q), canonicalKey(r))
		}
		o := q
		o.UserID = user + "x"
		if canonicalKey(q) == canonicalKey(o) {
			t.Fatalf("different users share key %q", canonicalKey(q))
		}
		// Moving bytes between fields changes the key.
		if client != "" {
			m := q
			m.UserID, m.ClientID = user+client[:1], client[1:]
			if canonicalKey(q) == canonicalKey(m) {
				t.Fatalf("field boundary ignored: %q", canonicalKey(q))
			}
		}
	})
}
