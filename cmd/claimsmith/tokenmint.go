package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/setup"
)

type mintRequest struct {
	user                                runtime.User
	client, audience, connection, nonce string
	scopes                              []string
}

// claimFlags collects the repeatable --claim KEY=VALUE flags in order.
type claimFlags struct{ kv []string }

func (c *claimFlags) String() string { return strings.Join(c.kv, " ") }

func (c *claimFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	c.kv = append(c.kv, v)
	return nil
}

// mintUser builds the event's user from the flags: the id, email and its
// verification, the connection's groups, then every --claim KEY=VALUE as a
// field of the native event's user object (a dotted KEY reaches into
// objects such as user_metadata). The object is decoded strictly, so a
// misspelt field is an error naming it instead of a silently ignored key.
func mintUser(id, email string, verified bool, groups, claims []string) (runtime.User, error) {
	obj := map[string]any{"user_id": id}
	if email != "" {
		obj["email"] = email
	}
	if verified {
		obj["email_verified"] = true
	}
	if len(groups) > 0 {
		obj["groups"] = groups
	}
	for _, kv := range claims {
		k, v, _ := strings.Cut(kv, "=")
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			val = v // not JSON: the string itself
		}
		path := strings.Split(k, ".")
		m := obj
		for _, p := range path[:len(path)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[path[len(path)-1]] = val
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return runtime.User{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var u runtime.User
	if err := dec.Decode(&u); err != nil {
		return runtime.User{}, fmt.Errorf("--claim: the event's user: %v", err)
	}
	if u.UserID == "" {
		return runtime.User{}, errors.New("--claim: user_id cannot be empty")
	}
	return u, nil
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
		return &exitError{code: 2, err: errors.New("token mint runs the login pipeline of the file serve runs: pass --config FILE (or set $CLAIMSMITH_CONFIG; after make run: eval \"$(make -s dev-env)\")")}
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
		User:        r.user,
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
		mintErr = &exitError{code: 3, err: fmt.Errorf("login denied by rule %q (%s): %s", res.Decision.Rule, res.Decision.Code, res.Decision.Reason)}
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return err
	}
	return mintErr
}
