package exchange

import (
	"errors"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

func TestParseForm(t *testing.T) {
	const ct = "application/x-www-form-urlencoded"
	r, err := ParseForm(ct+"; charset=utf-8", []byte("grant_type="+GrantTokenExchange+"&subject_token=a.b.c&subject_token_type="+TokenTypeIDToken+
		"&audience=x&audience=y&audience=x&resource=https://api.example.com/&scope=openid+read+openid&client_id=app&client_secret=s&unknown=1"))
	if err != nil {
		t.Fatal(err)
	}
	if r.SubjectToken != "a.b.c" || len(r.Audience) != 2 || len(r.Resource) != 1 || strings.Join(r.Scope, " ") != "openid read" || r.ClientID != "app" || r.ClientSecret != "s" {
		t.Fatalf("%+v", r)
	}
	for name, c := range map[string]struct{ ct, body, code string }{
		"json":         {"application/json", `{}`, CodeInvalidRequest},
		"no grant":     {ct, "subject_token=x", CodeInvalidRequest},
		"twice":        {ct, "grant_type=a&grant_type=b", CodeInvalidRequest},
		"twice secret": {ct, "grant_type=a&client_secret=1&client_secret=2", CodeInvalidRequest},
		"bad escape":   {ct, "grant_type=%zz", CodeInvalidRequest},
		"bad scope":    {ct, "grant_type=a&scope=a%22b", CodeInvalidScope},
		"relative res": {ct, "grant_type=a&resource=/api", CodeInvalidTarget},
		"fragment res": {ct, "grant_type=a&resource=https://a/%23frag", CodeInvalidTarget},
	} {
		_, err := ParseForm(c.ct, []byte(c.body))
		if e, ok := AsError(err); !ok || e.Code != c.code {
			t.Errorf("%s: got %v, want %s", name, err, c.code)
		}
	}
}

// FuzzParseForm: any body decodes or is refused with an *Error; a decoded
// request has a grant type and only valid scope tokens.
func FuzzParseForm(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type="+GrantTokenExchange+"&subject_token=a.b.c&subject_token_type="+TokenTypeJWT+"&scope=openid")
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&resource=https://x/&audience=y&audience=y")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "grant_type=a&scope=%20%20a%20")
	f.Add("text/plain", "grant_type=a")
	f.Fuzz(func(t *testing.T, ct, body string) {
		r, err := ParseForm(ct, []byte(body))
		if err != nil {
			if _, ok := AsError(err); !ok || !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("error %v is not an invalid_* *Error", err)
			}
			return
		}
		if r.GrantType == "" {
			t.Fatal("decoded a request without grant_type")
		}
		for _, s := range r.Scope {
			if !runtime.ValidScope(s) {
				t.Fatalf("invalid scope %q kept", s)
			}
		}
	})
}

// FuzzPeekIssuer: upstream token parsing never panics; an issuer it
// returns is a non-empty string.
func FuzzPeekIssuer(f *testing.F) {
	f.Add(b64(`{"alg":"ES256"}`) + "." + b64(`{"iss":"https://idp.example.com","sub":"a"}`) + ".sig")
	f.Add(b64(`{}`) + "." + b64(`{"iss":7}`) + ".")
	f.Add("a.b")
	f.Add("..")
	f.Add(b64(`{}`) + "." + b64(`[1,2]`) + ".x")
	f.Fuzz(func(t *testing.T, tok string) {
		iss, err := PeekIssuer(tok)
		if err == nil && iss == "" {
			t.Fatal("empty issuer without error")
		}
		if err != nil && !errors.Is(err, runtime.ErrInvalid) && !errors.Is(err, runtime.ErrTooLarge) {
			t.Fatalf("untyped error %v", err)
		}
		_, _ = peekHeader(tok)
	})
}

// FuzzVerifyUpstream: whatever the subject token, the exchange refuses it
// with invalid_grant or succeeds only for a token the upstream signed.
func FuzzVerifyUpstream(f *testing.F) {
	fx := newFixture(f, nil)
	good := fx.op.idToken(f, fx.clock.Now(), nil)
	f.Add(good)
	f.Add(good[:len(good)-3] + "AAA")
	f.Add(b64(`{"alg":"none"}`) + "." + b64(`{"iss":"`+fx.op.issuer()+`","sub":"x"}`) + ".")
	f.Add("x.y.z")
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == "" {
			return // invalid_request, tested in TestRefusals
		}
		_, err := fx.exchange(t, tok, nil)
		if err == nil {
			// Only the upstream's signed content is accepted (base64
			// padding bits aside, which the JWS decoder may tolerate).
			if strings.Split(tok, ".")[1] != strings.Split(good, ".")[1] {
				t.Fatalf("accepted a token the upstream did not sign: %q", tok)
			}
			return
		}
		if e, ok := AsError(err); !ok || (e.Code != CodeInvalidGrant && e.Code != CodeSlowDown) {
			t.Fatalf("got %v, want invalid_grant", err)
		}
	})
}
