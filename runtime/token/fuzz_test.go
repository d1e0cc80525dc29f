package token

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// FuzzVerify feeds arbitrary strings to the token parser: it must never
// panic, every rejection must be an *InvalidTokenError, and only tokens we
// signed may pass.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, ES256)
	good := fx.access(f, AccessTokenRequest{Claims: runtime.Claims{{Name: "x", Value: []any{"a", 1.5, nil, map[string]any{"k": true}}}}})
	id, _ := fx.minter.MintIDToken(context.Background(), IDTokenRequest{Subject: "s", ClientID: "c"})
	for _, s := range []string{good, id.Token, "", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiIsImtpZCI6IngifQ.e30.c2ln", `{"payload":"e30","signatures":[]}`,
		good[:len(good)-3], good + "==", "eyJhbGciOiJFUzI1NiIsImtpZCI6WzFdfQ.e30.AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, kind := range []Kind{KindAccessToken, KindIDToken} {
			v, err := fx.verify.Verify(context.Background(), tok, VerifyOptions{Kind: kind})
			if err != nil {
				var ite *InvalidTokenError
				if !errors.As(err, &ite) || !errors.Is(err, runtime.ErrUnauthenticated) {
					t.Fatalf("rejection is not an InvalidTokenError: %T %v", err, err)
				}
				continue
			}
			if tok != good && tok != id.Token {
				// Base64 decoders may accept a variant spelling of our own token.
				if v.Claims.Issuer != testIssuer || v.Claims.Expiry.Time().Before(fx.clock.Now().Add(-time.Hour)) {
					t.Fatalf("accepted a token we did not sign: %q", tok)
				}
			}
		}
	})
}

// FuzzClaimEncoding: the hand-written payload encoder must produce JSON that
// decodes back to the same value, whatever a rule put in a string.
func FuzzClaimEncoding(f *testing.F) {
	for _, s := range []string{"", "plain", `quo"te`, `back\slash`, "tab\there", "nl\n", "ünïcødé", "\x00", "</script>", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := appendValue(nil, []any{s, []string{s, s}, map[string]any{s: s}})
		if err != nil {
			t.Fatal(err)
		}
		var back []any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, b, err)
		}
		want, _ := json.Marshal([]any{s, []string{s, s}, map[string]any{s: s}})
		var wantBack []any
		_ = json.Unmarshal(want, &wantBack)
		if !reflect.DeepEqual(back, wantBack) {
			t.Fatalf("%q: got %v, want %v", s, back, wantBack)
		}
	})
}

// TestClaimListsAsEncodingJSON: the payload encoder writes list claims
// byte for byte as encoding/json does — a nil list is null, as in the
// native answer's claims and the pipeline's claim-size check (it wrote []
// for a nil list, so a claim read null in the answer and [] in the token).
func TestClaimListsAsEncodingJSON(t *testing.T) {
	for _, v := range []any{[]string(nil), []string{}, []string{"a"}, []any(nil), []any{}, []any{"a", []string(nil)}} {
		got, err := appendValue(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(v)
		if string(got) != string(want) {
			t.Errorf("%#v: encoded %s, encoding/json %s", v, got, want)
		}
	}
}
