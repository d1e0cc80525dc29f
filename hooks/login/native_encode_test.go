package login

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

func nativeAnswers(s string) []*NativeResponse {
	n := json.Number("42")
	return []*NativeResponse{
		{},
		{TraceID: s, Decision: runtime.Decision{Reason: s, Code: "access_denied", Rule: s},
			AppMetadata: map[string]any{"a": n}, Degraded: []string{runtime.DegradedPatch}},
		{TraceID: s, Decision: runtime.Decision{Allowed: true, Rule: s},
			IDTokenClaims:     runtime.Claims{{Name: "https://example.com/" + s, Value: []string{s, "b"}}, {Name: "n", Value: n}},
			AccessTokenClaims: runtime.Claims{{Name: "x", Value: map[string]any{s: []any{s, true, nil}}}},
			ScopesAdded:       []string{s}, ScopesRemoved: []string{"b"},
			AppMetadata:   map[string]any{"authorization": map[string]any{"clients": map[string]any{s: map[string]any{"roles": []any{"r"}}}}},
			UserMetadata:  map[string]any{s: s},
			Authorization: &runtime.Authorization{Groups: []string{s}, Roles: []string{}},
			Tokens:        &MintedTokens{IDToken: "ey.a.b", AccessToken: s, TokenType: "Bearer", ExpiresIn: 3600, Scope: s},
			Degraded:      []string{runtime.DegradedProfile, s}},
		{Tokens: &MintedTokens{}},
		{Tokens: &MintedTokens{ExpiresIn: -1}},
		{Tokens: &MintedTokens{Scope: s}},
		{ScopesAdded: []string{}, AppMetadata: map[string]any{}, Degraded: []string{}},
	}
}

// FuzzNativeAnswerEncoding: the native answer's own encoder, through the
// handler's buffer, writes exactly what hooks.WriteJSON (encoding/json)
// wrote: same status, headers and bytes.
func FuzzNativeAnswerEncoding(f *testing.F) {
	for _, s := range []string{"", "alice", "<script>&", "\u2028\xff\x01é"} {
		f.Add(s)
	}
	var bufs answerBuffers
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range nativeAnswers(s) {
			want := httptest.NewRecorder()
			hooks.WriteJSON(want, 200, r)
			got := httptest.NewRecorder()
			if !bufs.write(got, 200, r) {
				t.Fatalf("%#v: not encoded", r)
			}
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Fatalf("answer\n%s\nencoding/json\n%s", got.Body.Bytes(), want.Body.Bytes())
			}
			for _, h := range []string{"Content-Type", "Cache-Control"} {
				if got.Header().Get(h) != want.Header().Get(h) {
					t.Fatalf("%s: %q, want %q", h, got.Header().Get(h), want.Header().Get(h))
				}
			}
		}
	})
}

// TestNativeAnswerEncodingFallsBack: an answer the own encoder cannot
// write (a claim value encoding/json refuses) is left to hooks.WriteJSON,
// unchanged: nothing is written by the fast path.
func TestNativeAnswerEncodingFallsBack(t *testing.T) {
	var bufs answerBuffers
	r := &NativeResponse{IDTokenClaims: runtime.Claims{{Name: "bad", Value: json.Number("01")}}}
	w := httptest.NewRecorder()
	if bufs.write(w, 200, r) {
		t.Fatal("an answer encoding/json refuses was written")
	}
	if w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Fatalf("wrote %q %v before falling back", w.Body.String(), w.Header())
	}
}

// BenchmarkNativeAnswerEncoding: the login's answer through the own
// encoder and through hooks.WriteJSON.
func BenchmarkNativeAnswerEncoding(b *testing.B) {
	r := nativeAnswers("alice")[2]
	var bufs answerBuffers
	w := httptest.NewRecorder()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w.Body.Reset()
			bufs.write(w, 200, r)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w.Body.Reset()
			hooks.WriteJSON(w, 200, r)
		}
	})
}
