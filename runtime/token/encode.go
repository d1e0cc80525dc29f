package token

import (
	"strconv"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// The token payload is written straight into one byte slice: fixed claims
// first, then the pipeline's custom claims. Going through a map (as the
// go-jose jwt builder does) would cost more than signing with ES256 or EdDSA.

// appendString appends s as a JSON string, as encoding/json (and the
// native answer, runtime.AppendJSONString) writes it.
func appendString(b []byte, s string) []byte { return runtime.AppendJSONString(b, s) }

func appendKey(b []byte, k string) []byte {
	b = append(b, ',')
	b = appendString(b, k)
	return append(b, ':')
}

func appendStringClaim(b []byte, k, v string) []byte {
	return appendString(appendKey(b, k), v)
}

func appendTimeClaim(b []byte, k string, t time.Time) []byte {
	return strconv.AppendInt(appendKey(b, k), t.Unix(), 10)
}

// appendValue appends a claim value as encoding/json encodes it: the same
// encoder as the native answer's claims (runtime.AppendJSON), so a claim
// reads the same in both.
func appendValue(b []byte, v any) ([]byte, error) { return runtime.AppendJSON(b, v) }

// appendCustom appends the custom claims, refusing any reserved name
// (runtime.ReservedClaim, the list the pipeline refuses too): a custom
// claim must never override what claimsmith sets (or must set) itself.
func appendCustom(b []byte, claims runtime.Claims, token string) ([]byte, error) {
	for _, c := range claims {
		if c.Name == "" || runtime.ReservedClaim(c.Name) {
			return nil, &runtime.ValidationError{Entity: token + " claim", ID: c.Name, Reason: "is reserved and cannot be set by a rule"}
		}
		b = appendKey(b, c.Name)
		var err error
		if b, err = appendValue(b, c.Value); err != nil {
			return nil, &runtime.ValidationError{Entity: token + " claim", ID: c.Name, Reason: err.Error()}
		}
	}
	return b, nil
}
