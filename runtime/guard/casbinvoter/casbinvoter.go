// Package casbinvoter is runtime/guard's Casbin authorizer, in its own
// package so that programs using the guard without Casbin (claimsmith's own
// binary among them) do not link it.
package casbinvoter

import (
	"context"
	"fmt"

	"github.com/casbin/casbin/v2"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/guard"
)

// Config configures the Casbin authorizer.
type Config struct {
	// Model and Policy are the Casbin model (.conf) and policy (.csv) files.
	Model  string `yaml:"model" json:"model"`
	Policy string `yaml:"policy" json:"policy"`
	// NoMatch is the vote when no request (user or role) is allowed:
	// "deny" (default) or "abstain" (let other voters decide).
	NoMatch string `yaml:"no_match" json:"no_match,omitempty"`
}

// Voter is an authorizer backed by a Casbin enforcer: subject is the user
// (the token's sub), and each of the token's roles is tried as a subject
// too, so policies may name users or roles without a role-manager sync;
// object is the route's resource (the path when it has none); action is
// the method.
type Voter struct {
	e       *casbin.SyncedEnforcer
	noMatch runtime.Vote
}

// New loads the model and policy files.
func New(cfg Config) (*Voter, error) {
	if cfg.Model == "" || cfg.Policy == "" {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "casbin", Reason: "model and policy files are required"}
	}
	c := &Voter{noMatch: runtime.Deny}
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
func (c *Voter) Name() string { return "casbin" }

// Vote implements guard.Voter.
func (c *Voter) Vote(_ context.Context, req *guard.AuthzRequest) (guard.Verdict, error) {
	obj := req.Resource
	if obj == "" {
		obj = req.Path
	}
	p := req.Principal
	subjects := append([]string{p.Subject}, p.Roles...)
	for _, s := range subjects {
		ok, err := c.e.Enforce(s, obj, req.Method)
		if err != nil {
			return guard.Verdict{}, fmt.Errorf("casbin: %w", err)
		}
		if ok {
			return guard.Allow("casbin allows " + s), nil
		}
	}
	return guard.Verdict{Vote: c.noMatch, Reason: "no casbin policy allows it"}, nil
}
