package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

type mintRequest struct {
	user, client, audience, connection, nonce string
	scopes, groups                            []string
}

// mintTokens runs the login pipeline for the user and client (the stored
// profile merged in, as a login through the hooks; metadata patches are
// computed, not persisted) and prints the minted tokens with the pipeline's
// decision and trace.
func mintTokens(ctx context.Context, a *app, b *setup.Backends, r mintRequest) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if cfg.Path() == "" {
		return fmt.Errorf("%w: token mint runs the login pipeline: pass --config with a pipeline section", runtime.ErrInvalid)
	}
	st, err := openDataStore(ctx, a, true)
	if err != nil {
		return err
	}
	defer st.Close()
	// The same construction as `claimsmith test` and serve. Like `test` it
	// leaves stored profiles unchanged: a CLI write behind a running
	// server's back would bypass its admin API and audit.
	enr, err := cfg.BuildPipeline(ctx, a.env(), st, setup.PipelineOptions{DryRun: true})
	if err != nil {
		return err
	}
	defer enr.Close()
	ts, err := b.TokenService(ctx, st, st)
	if err != nil {
		return err
	}
	defer ts.Close()
	return mintWith(ctx, a, ts, enr, r)
}

func mintWith(ctx context.Context, a *app, ts *setup.TokenService, enr runtime.Enricher, r mintRequest) error {
	ev := &runtime.Event{
		Trigger:     runtime.TriggerPostLogin,
		User:        runtime.User{UserID: r.user, Groups: r.groups},
		Client:      runtime.Client{ClientID: r.client},
		Connection:  runtime.Connection{Name: r.connection},
		Transaction: runtime.Transaction{RequestedScopes: r.scopes, Audience: r.audience, Nonce: r.nonce, Protocol: "claimsmith-cli"},
	}
	res, err := enr.Run(ctx, ev)
	if err != nil {
		return err
	}
	out := struct {
		Decision    runtime.Decision     `json:"decision"`
		IDToken     string               `json:"id_token,omitempty"`
		AccessToken string               `json:"access_token,omitempty"`
		TokenType   string               `json:"token_type,omitempty"`
		ExpiresIn   int64                `json:"expires_in,omitempty"`
		Scope       string               `json:"scope,omitempty"`
		Trace       []runtime.TraceEntry `json:"trace"`
	}{Decision: res.Decision, Trace: res.Trace}
	var mintErr error
	if res.Decision.Allowed {
		toks, err := ts.Minter.MintLogin(ctx, ev, res)
		if err != nil {
			return err
		}
		out.AccessToken, out.TokenType, out.Scope = toks.AccessToken.Token, "Bearer", toks.Scope
		out.ExpiresIn = int64(toks.AccessToken.ExpiresAt.Sub(toks.AccessToken.IssuedAt) / time.Second)
		if toks.IDToken != nil {
			out.IDToken = toks.IDToken.Token
		}
	} else {
		mintErr = &exitError{code: 3, err: fmt.Errorf("login denied by rule %q: %s", res.Decision.Rule, res.Decision.Reason)}
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return err
	}
	return mintErr
}
