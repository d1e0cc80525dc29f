package exchange

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
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

// FuzzStoredClient: an OAuth registration read from the store (an import
// can bring anything) becomes a client or an error naming a field; it
// never panics, and an accepted one has a usable method and credentials.
func FuzzStoredClient(f *testing.F) {
	f.Add("client_secret_basic", "sha256:"+strings.Repeat("0", 64), "client_credentials", "", "https://idp.example.com")
	f.Add("private_key_jwt", "", GrantTokenExchange, `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`, "")
	f.Add("none", "plain", "password", `{"keys":[]}`, "idp")
	f.Add("", "pbkdf2-sha256:1:x:y", "", "{", "http://")
	f.Fuzz(func(t *testing.T, method, hash, grant, jwks, issuer string) {
		o := authz.OAuthClient{AuthMethod: method, SecretHash: hash, GrantTypes: []string{grant}, Issuers: []string{issuer}, JWKS: []byte(jwks)}
		cl, err := StoredClient(authz.Application{ClientID: "c", OAuth: &o})
		if err != nil {
			var ve *runtime.ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		if !slices.Contains(AuthMethods, cl.AuthMethod) && cl.AuthMethod != "" {
			t.Fatalf("accepted method %q", cl.AuthMethod)
		}
		if cl.SecretHash == "" && cl.keys == nil {
			t.Fatal("accepted a client without credentials")
		}
	})
}
