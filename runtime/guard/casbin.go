package guard

import (
	"context"
	"fmt"

	"github.com/casbin/casbin/v2"

	"github.com/claimsmith/claimsmith/runtime"
)

// CasbinConfig configures the Casbin authorizer.
type CasbinConfig struct {
	// Model and Policy are the Casbin model (.conf) and policy (.csv) files.
	Model  string `yaml:"model" json:"model"`
	Policy string `yaml:"policy" json:"policy"`
	// NoMatch is the vote when no request (user or role) is allowed:
	// "deny" (default) or "abstain" (let other voters decide).
	NoMatch string `yaml:"no_match" json:"no_match,omitempty"`
}

// Casbin is an authorizer backed by a Casbin enforcer: subject is the user
// (the token's sub), and each of the token's roles is tried as a subject
// too, so policies may name users or roles without a role-manager sync;
// object is the route's resource (the path when it has none); action is
// the method.
type Casbin struct {
	e       *casbin.SyncedEnforcer
	noMatch runtime.Vote
}

// NewCasbin loads the model and policy files.
func NewCasbin(cfg CasbinConfig) (*Casbin, error) {
	if cfg.Model == "" || cfg.Policy == "" {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "casbin", Reason: "model and policy files are required"}
	}
	c := &Casbin{noMatch: runtime.Deny}
	switch cfg.NoMatch {
	case "", "deny":
	case "abstain":
		c.noMatch = runtime.Abstain
	default:
		return nil, &runtime.ValidationError{Entity: "guard", Field: "casbin.no_match", Reason: fmt.Sprintf("%q is not one of deny, abstain", cfg.NoMatch)}
	}
	e, err := casbin.NewSyncedEnforcer(cfg.Model, cfg.Policy)
	if err != nil {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "casbin", Reason: err.Error()}
	}
	c.e = e
	return c, nil
}

// Name implements the optional voter name.
func (c *Casbin) Name() string { return "casbin" }

// Vote implements Voter.
func (c *Casbin) Vote(_ context.Context, req *AuthzRequest) (Verdict, error) {
	obj := req.Resource
	if obj == "" {
		obj = req.Path
	}
	p := req.Principal
	subjects := append([]string{p.Subject}, p.Roles...)
	for _, s := range subjects {
		ok, err := c.e.Enforce(s, obj, req.Method)
		if err != nil {
			return Verdict{}, fmt.Errorf("casbin: %w", err)
		}
		if ok {
			return Allow("casbin allows " + s), nil
		}
	}
	return Verdict{Vote: c.noMatch, Reason: "no casbin policy allows it"}, nil
}
