package rules

import (
	"context"
	"fmt"

	"github.com/claimsmith/claimsmith/runtime"
)

// CopyMetadataClaimsConfig is the copy-metadata-claims rule's `config`.
type CopyMetadataClaimsConfig struct {
	// AppMetadata and UserMetadata list the top-level keys copied; each
	// becomes the claim <namespace><key>. Absent keys are skipped.
	AppMetadata  []string `json:"app_metadata"`
	UserMetadata []string `json:"user_metadata"`
	// Tokens selects the tokens (default: both).
	Tokens *Tokens `json:"tokens"`
}

// CopyMetadataClaims copies selected app_metadata and user_metadata keys
// into namespaced claims. It reads the metadata as earlier rules left it.
type CopyMetadataClaims struct {
	app, user []copyKey
	tokens    Tokens
}

type copyKey struct{ key, claim string }

// NewCopyMetadataClaims builds the rule; claim names are computed once here.
func NewCopyMetadataClaims(namespace string, decode runtime.Decoder) (*CopyMetadataClaims, error) {
	var cfg CopyMetadataClaimsConfig
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	r := &CopyMetadataClaims{tokens: Tokens{IDToken: true, AccessToken: true}}
	if cfg.Tokens != nil {
		r.tokens = *cfg.Tokens
	}
	if !r.tokens.IDToken && !r.tokens.AccessToken {
		return nil, &runtime.SettingError{Key: "tokens", Reason: "selects no token"}
	}
	if len(cfg.AppMetadata)+len(cfg.UserMetadata) == 0 {
		return nil, &runtime.SettingError{Key: "app_metadata", Reason: "list at least one app_metadata or user_metadata key to copy"}
	}
	keys := func(field string, list []string) ([]copyKey, error) {
		out := make([]copyKey, 0, len(list))
		for i, k := range list {
			if k == "" {
				return nil, &runtime.SettingError{Key: fmt.Sprintf("%s[%d]", field, i), Reason: "empty key"}
			}
			ck := copyKey{key: k, claim: claimName(namespace, k)}
			if err := checkClaim(fmt.Sprintf("%s[%d]", field, i), ck.claim); err != nil {
				return nil, err
			}
			out = append(out, ck)
		}
		return out, nil
	}
	var err error
	if r.app, err = keys("app_metadata", cfg.AppMetadata); err != nil {
		return nil, err
	}
	if r.user, err = keys("user_metadata", cfg.UserMetadata); err != nil {
		return nil, err
	}
	return r, nil
}

// Run implements runtime.Rule. It abstains.
func (r *CopyMetadataClaims) Run(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
	for _, k := range r.app {
		if v, ok := ev.User.AppMetadata[k.key]; ok {
			r.tokens.set(out, k.claim, v)
		}
	}
	for _, k := range r.user {
		if v, ok := ev.User.UserMetadata[k.key]; ok {
			r.tokens.set(out, k.claim, v)
		}
	}
	return nil
}
