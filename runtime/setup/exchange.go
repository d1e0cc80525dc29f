package setup

import (
	"context"
	"errors"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/hooks/oauth"
	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/exchange"
	"github.com/claimsmith/claimsmith/runtime/replay"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// buildExchanger builds the token endpoint's grants from the exchange
// section (nil when it is not enabled). Validate passes a nil token
// service: everything is checked (issuers, clients, secret hashes) and
// nothing is fetched. The exchanger lives as long as the server; the
// section takes effect at restart (upstream key caches, client back-offs
// and subject rates survive reloads of the pipeline).
//
// store, when set, is where clients registered in the store are found.
func (c *Config) buildExchanger(env Env, ts *TokenService, store *exchangeStore) (*exchange.Exchanger, error) {
	if !c.Exchange.Enabled {
		return nil, nil
	}
	var m exchange.Minter = validationMinter{}
	iss := c.Tokens.Issuer
	if ts != nil {
		m, iss = ts.Minter, ts.Minter.Issuer()
	}
	deps := exchange.Deps{Minter: m, Issuer: iss, Now: env.Now, Logger: env.Log}
	if store != nil {
		deps.Store = exchange.NewStoreClients(exchange.StoreDeps{Apps: store.apps, Revision: store.revision}, token.ClientsOptions{Now: env.Now}, env.Log)
		deps.Replay = store.replay
	}
	ex, err := exchange.New(c.Exchange, deps)
	if err != nil {
		at := keyPath{"exchange"}
		var ve *runtime.ValidationError
		if errors.As(err, &ve) && ve.Field != "" {
			return nil, c.bad(at.with(fieldPath(ve.Field)...), invalidf("%s", ve.Reason))
		}
		return nil, c.bad(at, invalidf("%s", err))
	}
	return ex, nil
}

// exchangeStore is where the token endpoint finds store clients: the
// applications, read at the policy cache's revision.
type exchangeStore struct {
	apps     authz.ApplicationReader
	revision func() uint64
	// replay is the shared store of assertion ids (nil: in process).
	replay replay.Store
}

// exchangeRoute registers POST /oauth2/token in a hook set, bound to the
// set's pipeline, so a token request that started on a generation ends on
// it (the reloader releases a pipeline after its last request).
//
// budget bounds the bodies read before their client is authenticated
// (client_secret_post and private_key_jwt send credentials in the body).
func exchangeRoute(set *hooks.HookSet, ex *exchange.Exchanger, enr runtime.Enricher, env Env, budget *hooks.BodyBudget) {
	if ex == nil || set == nil || enr == nil {
		return
	}
	set.Handlers[oauth.PatternToken] = &oauth.TokenHandler{Exchanger: ex, Enricher: enr, Log: env.Log, Budget: budget}
}

// validationMinter stands in for the token service while Validate builds
// the exchanger; it is never asked to mint.
type validationMinter struct{}

var errValidationOnly = errors.New("built for validation only")

func (validationMinter) MintIDToken(context.Context, token.IDTokenRequest) (token.Minted, error) {
	return token.Minted{}, errValidationOnly
}

func (validationMinter) MintAccessToken(context.Context, token.AccessTokenRequest) (token.Minted, error) {
	return token.Minted{}, errValidationOnly
}
