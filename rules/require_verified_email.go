package rules

import (
	"context"

	"github.com/claimsmith/claimsmith/runtime"
)

// RequireVerifiedEmailConfig is the require-verified-email rule's `config`.
type RequireVerifiedEmailConfig struct {
	// Message is the deny reason (default the Auth0 template's).
	Message string `json:"message"`
}

// RequireVerifiedEmail denies a user whose email is not verified, as the
// Auth0 Rules template did (UnauthorizedError, so code `unauthorized`).
// Machine logins (credentials-exchange) have no email and are not judged.
type RequireVerifiedEmail struct {
	msg string
}

// NewRequireVerifiedEmail builds the rule.
func NewRequireVerifiedEmail(decode runtime.Decoder) (*RequireVerifiedEmail, error) {
	cfg := RequireVerifiedEmailConfig{Message: "Please verify your email before logging in."}
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Message == "" {
		return nil, &runtime.SettingError{Key: "message", Reason: "empty"}
	}
	return &RequireVerifiedEmail{msg: cfg.Message}, nil
}

// Run implements runtime.Rule.
func (r *RequireVerifiedEmail) Run(_ context.Context, ev *runtime.Event, out *runtime.Commands) error {
	if ev.Trigger == runtime.TriggerCredentialsExchange || ev.User.EmailVerified {
		return nil
	}
	out.Deny(r.msg, runtime.CodeUnauthorized)
	return nil
}
