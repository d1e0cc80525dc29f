package login

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// Fuzz tests for every decoder of outside input and every signature parser.
// Their seed corpora (the recorded payloads plus edge cases) run as unit
// tests in plain `go test`.

func addPayloadSeeds(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "samples", "payloads", dir, "*.request.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "null", "{}", "[]", `"x"`, "{", `{"a":1}{}`, `{"user":{"user_id":7}}`, "\x00\xff"} {
		f.Add([]byte(s))
	}
}

// refusal checks that a decoding error is a clear "invalid" error.
func refusal(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("decoding error %v does not match ErrInvalid", err)
	}
}

func FuzzDecodeHydraHook(f *testing.F) {
	addPayloadSeeds(f, "hydra")
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeHydraHook(body)
		if err != nil {
			refusal(t, err)
			return
		}
		ev, err := req.Event("")
		if err != nil {
			refusal(t, err)
			return
		}
		if ev.User.UserID == "" || ev.Client.ClientID == "" {
			t.Fatalf("event without user or client: %+v", ev)
		}
		res := &runtime.Result{Decision: runtime.Decision{Allowed: true}}
		res.IDTokenClaims.Set("https://x/roles", []string{"a"})
		st, out, err := HydraAnswer(req, res, "https://x/")
		if err != nil || st != http.StatusOK {
			t.Fatalf("answer %d %v", st, err)
		}
		resp := out.(*HydraHookResponse)
		if resp.Session.AccessToken == nil || resp.Session.IDToken == nil {
			t.Fatal("answer with a null session map")
		}
		if it := req.Session.IDToken; it != nil && it.Claims != nil {
			if sid, ok := it.Claims.Ext["sid"]; ok && resp.Session.IDToken["sid"] != sid {
				t.Fatal("sid lost")
			}
		}
	})
}

func FuzzDecodeZitadelRequest(f *testing.F) {
	addPayloadSeeds(f, "zitadel")
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeZitadelRequest(body)
		if err != nil {
			refusal(t, err)
			return
		}
		ev, err := req.Event("", "")
		if err != nil {
			refusal(t, err)
			return
		}
		if ev.User.UserID == "" || ev.Client.ClientID == "" {
			t.Fatalf("event without user or client: %+v", ev)
		}
		res := &runtime.Result{Decision: runtime.Decision{Allowed: true}, AppMetadata: ev.User.AppMetadata}
		if _, err := ZitadelAnswer(functionSuffix(req.Function), res); err != nil {
			t.Fatalf("answer: %v", err)
		}
	})
}

func FuzzDecodeSupabaseRequest(f *testing.F) {
	addPayloadSeeds(f, "supabase")
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeSupabaseRequest(body)
		if err != nil {
			refusal(t, err)
			return
		}
		ev := req.Event("", "")
		if ev.User.UserID == "" || ev.Client.ClientID == "" || ev.Connection.Name == "" {
			t.Fatalf("event without user, client or connection: %+v", ev)
		}
		res := &runtime.Result{Decision: runtime.Decision{Allowed: true}}
		res.AccessTokenClaims.Set("role", "admin")
		res.AccessTokenClaims.Set("https://x/roles", []string{"a"})
		out := SupabaseAnswer(req, res)
		for _, c := range req.Claims {
			v, ok := out.Claims.Get(c.Name)
			if !ok {
				t.Fatalf("input claim %q not echoed", c.Name)
			}
			if c.Name == "role" && v != c.Value {
				t.Fatal("the input role claim was replaced")
			}
		}
	})
}

func FuzzDecodePolicyRequest(f *testing.F) {
	addPayloadSeeds(f, "auth0")
	f.Add([]byte(`{"connectionName":"c","groups":"not-an-array"}`))
	f.Add([]byte(`{"connectionName":"c","groups":[1,"a",null]}`))
	f.Add([]byte(`{"connectionName":7}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodePolicyRequest(body)
		if err != nil {
			refusal(t, err)
			return
		}
		if req.ConnectionName == "" {
			t.Fatal("accepted an empty connectionName")
		}
	})
}

func FuzzParseWebhookSecrets(f *testing.F) {
	for _, s := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "v1,whsec_YQ==|v1,whsec_Yg", "", "|", "whsec_", "v1,whsec_!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseWebhookSecrets(s)
		if err != nil {
			refusal(t, err)
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		for _, k := range keys {
			if len(k) == 0 {
				t.Fatal("empty key accepted")
			}
		}
	})
}

func FuzzParseWebhookSignatures(f *testing.F) {
	for _, s := range []string{"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1a,xyz v1,abc", "", " ", "v1,", strings.Repeat("v1,a ", 40)} {
		f.Add(s)
	}
	v, err := NewWebhookVerifier("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", WebhookOptions{Now: func() time.Time { return time.Unix(1614265330, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sigs, err := parseWebhookSignatures(s)
		if err != nil {
			if !errors.Is(err, runtime.ErrUnauthenticated) {
				t.Fatalf("parse error %v is not ErrUnauthenticated", err)
			}
		} else {
			for _, sig := range sigs {
				if len(sig) != 32 {
					t.Fatalf("signature of %d bytes accepted", len(sig))
				}
			}
		}
		h := http.Header{}
		h.Set(HeaderWebhookID, "msg_fuzz")
		h.Set(HeaderWebhookTimestamp, "1614265330")
		h.Set(HeaderWebhookSignature, s)
		if _, err := v.Verify(t.Context(), h, []byte(`{"test": 2432232314}`)); err == nil && !strings.Contains(s, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE") {
			t.Fatalf("forged signature %q verified", s)
		}
	})
}

func FuzzParseZitadelSignature(f *testing.F) {
	for _, s := range []string{"t=1732287231,v1=" + strings.Repeat("ab", 32), "t=1,v1=zz", "", "t=", "v1=00", "t=1,t=2,v1=" + strings.Repeat("00", 32), "t=-9223372036854775808,v1=" + strings.Repeat("00", 32)} {
		f.Add(s)
	}
	v, err := NewZitadelVerifier([]string{"key"}, 0, func() time.Time { return time.Unix(1732287231, 0) })
	if err != nil {
		f.Fatal(err)
	}
	body := []byte(`{"function":"function/preaccesstoken"}`)
	good := SignZitadel("key", time.Unix(1732287231, 0), body)
	f.Fuzz(func(t *testing.T, s string) {
		_, sigs, err := ParseZitadelSignature(s)
		if err != nil {
			if !errors.Is(err, runtime.ErrUnauthenticated) {
				t.Fatalf("parse error %v is not ErrUnauthenticated", err)
			}
		} else if len(sigs) == 0 {
			t.Fatal("parsed without a signature")
		}
		if _, err := v.verifySignature(s, body); err == nil && !strings.Contains(s, strings.TrimPrefix(good, "t=1732287231,v1=")) {
			t.Fatalf("forged header %q verified", s)
		}
	})
}
