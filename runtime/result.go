package runtime

import "time"

// Decision is the pipeline's answer on access.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
	// Code is the OAuth error code of a deny: access_denied or unauthorized.
	Code string `json:"code,omitempty"`
	// Rule names the rule whose vote (or failure) settled a deny.
	Rule string `json:"rule,omitempty"`
}

// Result is what one run of the pipeline produced.
type Result struct {
	Decision          Decision       `json:"decision"`
	IDTokenClaims     Claims         `json:"id_token_claims"`
	AccessTokenClaims Claims         `json:"access_token_claims"`
	ScopesAdded       []string       `json:"scopes_added,omitempty"`
	ScopesRemoved     []string       `json:"scopes_removed,omitempty"`
	AppMetadata       map[string]any `json:"app_metadata,omitempty"`
	UserMetadata      map[string]any `json:"user_metadata,omitempty"`
	Authorization     *Authorization `json:"authorization,omitempty"`
	Trace             []TraceEntry   `json:"trace"`
	// Degraded names what the login was answered without, by the store's
	// availability policy (DegradedProfile, DegradedPatch); empty when
	// everything answered.
	Degraded []string `json:"degraded,omitempty"`
}

// What a degraded answer went without (Result.Degraded).
const (
	// DegradedProfile: the stored profile could not be read; rules saw only
	// the metadata the IdP sent.
	DegradedProfile = "stored_profile"
	// DegradedPatch: the metadata patch was not persisted (it is still in
	// the answer for IdPs that keep their own user store).
	DegradedPatch = "profile_patch_dropped"
)

// TraceEntry records one rule's run: what it voted, how long it took, what
// went wrong and what it logged.
type TraceEntry struct {
	Rule     string        `json:"rule"`
	Kind     string        `json:"kind"`
	Vote     Vote          `json:"vote"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
	// Skipped is true when the rule failed and its on_error is "skip".
	Skipped bool      `json:"skipped,omitempty"`
	Log     []LogLine `json:"log,omitempty"`
	// Cause is the rule's failure as an error (nil when it did not fail),
	// for callers classifying it with errors.Is (metrics: ErrTimeout,
	// ErrPanic); Error is its text.
	Cause error `json:"-"`
}
