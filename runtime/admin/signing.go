package admin

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// Signing-key rotation goes through here from every front end (dashboard,
// CLI), so each one leaves an audit record in the same log as the model's
// writes. The record names keys by kid only: no key material is read.

// ActionKeysRotate is the audit action of a signing-key rotation.
const ActionKeysRotate = "keys.rotate"

// EntitySigningKey is the audit entity of a rotation; the record's
// EntityID is the new key's kid.
const EntitySigningKey = "signing_key"

// SigningKeys is what a rotation needs of the token signing key set
// (*token.KeySet).
type SigningKeys interface {
	Infos() []token.KeyInfo
	Rotate(ctx context.Context, alg token.Algorithm) (*token.Key, error)
	// Init generates a key that signs at once when none can sign (the
	// first rotation of a key set nothing has published yet).
	Init(ctx context.Context) error
}

// Rotation is an audited rotation.
type Rotation struct {
	// Key is the new key (State next; active when it is the first key).
	Key token.KeyInfo
	// Retiring is the kid of the key Key takes over from when it
	// activates: the active key, or the next key of a rotation still
	// propagating ("" when there was none).
	Retiring string
	// Record is the audit record (Seq 0 when appending it failed: the new
	// key stands and the failure is logged).
	Record Record
}

// signingState is the audited state of the key set: kids only.
type signingState struct {
	// Keys are the published kids (not the dropped ones), oldest first.
	Keys []string `json:"keys"`
	// Active signs now; Next is the new key, activating at ActivateAt, when
	// Retires is retired.
	Active     string    `json:"active,omitempty"`
	Next       string    `json:"next,omitempty"`
	Alg        string    `json:"alg,omitempty"`
	ActivateAt time.Time `json:"activate_at,omitzero"`
	Retires    string    `json:"retires,omitempty"`
}

func stateOf(infos []token.KeyInfo) signingState {
	var st signingState
	for _, in := range infos {
		if in.State == token.StateDropped {
			continue
		}
		st.Keys = append(st.Keys, in.ID)
		if in.State == token.StateActive {
			st.Active = in.ID
		}
	}
	return st
}

// RotateSigningKey rotates the signing keys (alg "" is the configured
// algorithm) and audits it as caller: see the package-level
// RotateSigningKey.
func (s *Service) RotateSigningKey(ctx context.Context, caller Caller, keys SigningKeys, alg token.Algorithm) (Rotation, error) {
	return RotateSigningKey(ctx, keys, s.audit, caller, alg, s.log, s.now)
}

// RotateSigningKey publishes a new signing key as next (or, when no key
// signs yet, generates one that signs at once) and appends the audit record
// (action keys.rotate, entity signing_key, id the new kid; before and after
// the published kids, the active one, and the new and the retiring kid).
// The record is written after the key: a key cannot be taken back, so an
// append that fails is logged loudly and Record.Seq is 0. log and now may be
// nil.
func RotateSigningKey(ctx context.Context, keys SigningKeys, audit AuditLog, caller Caller, alg token.Algorithm,
	log *slog.Logger, now func() time.Time) (Rotation, error) {
	if keys == nil || audit == nil {
		return Rotation{}, fmt.Errorf("rotate signing key: no signing keys or audit log: %w", runtime.ErrInvalid)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	before := stateOf(keys.Infos())
	var kid string
	if len(before.Keys) == 0 {
		// Nothing published yet: nothing can have cached a JWKS, so the
		// first key may sign at once.
		if err := keys.Init(ctx); err != nil {
			return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
		}
	} else {
		k, err := keys.Rotate(ctx, alg)
		if err != nil {
			return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
		}
		kid = k.ID
	}
	infos := keys.Infos()
	var rot Rotation
	for _, in := range infos {
		if in.ID == kid || (kid == "" && in.State == token.StateActive) {
			rot.Key = in
		}
	}
	if rot.Key.ID == "" {
		return Rotation{}, fmt.Errorf("rotate signing key: the new key %q is not in the key set after rotating (changed concurrently?): %w", kid, runtime.ErrConflict)
	}
	if rot.Key.State == token.StateNext {
		// The key the new one takes over from: the active one, or a next
		// key published by a rotation still propagating.
		for _, in := range infos {
			if in.ID != rot.Key.ID && in.RetireAt.Equal(rot.Key.ActivateAt) {
				rot.Retiring = in.ID
			}
		}
	}
	after := stateOf(infos)
	after.Alg, after.ActivateAt = string(rot.Key.Algorithm), rot.Key.ActivateAt.UTC()
	if rot.Key.State == token.StateNext {
		after.Next, after.Retires = rot.Key.ID, rot.Retiring
	}
	rec := Record{Time: now(), KeyID: caller.KeyID, KeyName: caller.KeyName, Action: ActionKeysRotate,
		Entity: EntitySigningKey, EntityID: rot.Key.ID, RequestID: caller.RequestID,
		Before: rawJSON(before), After: rawJSON(after)}
	out, err := audit.Append(context.WithoutCancel(ctx), rec)
	if err != nil {
		log.ErrorContext(ctx, "admin: audit record of a signing-key rotation not written", "kid", rot.Key.ID, "retiring", rot.Retiring,
			"key", caller.KeyName, "request_id", caller.RequestID, "err", err)
		rot.Record = rec
		return rot, nil
	}
	log.InfoContext(ctx, "admin: signing key rotated", "kid", rot.Key.ID, "alg", rot.Key.Algorithm, "activate_at", rot.Key.ActivateAt,
		"retiring", rot.Retiring, "key", caller.KeyName, "request_id", caller.RequestID)
	rot.Record = out
	return rot, nil
}
