package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// Token endpoint client authentication methods (RFC 7591 §2).
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
)

// AuthMethods are the token_endpoint_auth_method values a client may have.
var AuthMethods = []string{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT}

// Client is a registered client of the token endpoint, from the exchange
// section or from the store (an application with an OAuth registration).
type Client struct {
	ClientConfig
	// secrets verifies a store client's secret; config clients share the
	// exchanger's verifier (one back-off table, one cost for every id).
	secrets *token.Clients
	// Stored is true for a client registered in the store.
	Stored bool
}

// ClientLookup finds a registered client by id (fosite's
// ClientManager.GetClient): an error matching runtime.ErrNotFound when there
// is none, any other error when the registry cannot answer now.
type ClientLookup interface {
	LookupClient(ctx context.Context, id string) (*Client, error)
}

// StoreDeps are where the clients registered in the store come from.
type StoreDeps struct {
	// Apps reads an application by client_id.
	Apps authz.ApplicationReader
	// Revision is the highest store revision this node knows (the policy
	// cache's: raised before an admin write returns, by the invalidation
	// channel and by polling). A cached client is used while it holds.
	Revision func() uint64
}

// StoreClients is the ClientLookup of store clients: each is read once per
// store revision, so a token request costs no store read once its client
// was seen, and a rotated secret or a deleted client takes effect as soon
// as this node learns the new revision.
type StoreClients struct {
	deps StoreDeps
	opts token.ClientsOptions
	log  *slog.Logger

	mu sync.RWMutex
	m  map[string]storeEntry
}

type storeEntry struct {
	rev uint64
	cl  *Client // nil: no such client at rev
}

// maxStoreClients bounds the cache: unknown ids are cached too (as absent),
// and callers choose them.
const maxStoreClients = 10_000

// NewStoreClients returns the lookup of store clients.
func NewStoreClients(deps StoreDeps, opts token.ClientsOptions, log *slog.Logger) *StoreClients {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StoreClients{deps: deps, opts: opts, log: log, m: map[string]storeEntry{}}
}

// LookupClient implements ClientLookup.
func (s *StoreClients) LookupClient(ctx context.Context, id string) (*Client, error) {
	if id == "" || len(id) > authz.MaxApplicationID {
		return nil, fmt.Errorf("client %q: %w", id, runtime.ErrNotFound)
	}
	rev := s.deps.Revision()
	s.mu.RLock()
	e, ok := s.m[id]
	s.mu.RUnlock()
	if !ok || e.rev != rev {
		var err error
		if e, err = s.load(ctx, id, rev); err != nil {
			return nil, err
		}
	}
	if e.cl == nil {
		return nil, fmt.Errorf("client %q: %w", id, runtime.ErrNotFound)
	}
	return e.cl, nil
}

// load reads id at rev (read before the store: a write landing in between
// leaves an entry labelled with the older revision, which the next lookup
// replaces).
func (s *StoreClients) load(ctx context.Context, id string, rev uint64) (storeEntry, error) {
	e := storeEntry{rev: rev}
	a, err := s.deps.Apps.Application(ctx, id)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
	case err != nil:
		return e, fmt.Errorf("looking up client %q: %w", id, err)
	case a.OAuth != nil:
		cl, err := StoredClient(a)
		if err != nil {
			// An import can bring a registration the admin API would have
			// refused: it authenticates nobody.
			s.log.WarnContext(ctx, "token endpoint: ignoring an invalid client registration in the store", "client_id", id, "err", err)
			break
		}
		if cl.SecretHash != "" {
			if cl.secrets, err = token.NewClientsWith([]token.ClientConfig{{ClientID: id, SecretHash: cl.SecretHash}}, s.opts); err != nil {
				s.log.WarnContext(ctx, "token endpoint: ignoring a client with an invalid secret hash", "client_id", id, "err", err)
				break
			}
		}
		e.cl = cl
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[id]; ok && old.rev > rev {
		return old, nil // a newer load won
	}
	if len(s.m) >= maxStoreClients {
		// Entries of older revisions are stale anyway; then any, down to
		// half, so a flood of unknown ids cannot grow the cache.
		for k, o := range s.m {
			if o.rev != rev {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < maxStoreClients/2 {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[id] = e
	return e, nil
}

// StoredClient is the client an application's OAuth registration makes,
// checked as the exchange section's clients are (issuers are not checked
// against the configured ones: a client limited to an issuer that is not
// configured exchanges nothing from it).
func StoredClient(a authz.Application) (*Client, error) {
	o := a.OAuth
	if o == nil {
		return nil, fmt.Errorf("application %q: %w", a.ClientID, runtime.ErrNotFound)
	}
	cc := ClientConfig{ClientID: a.ClientID, SecretHash: o.SecretHash, AuthMethod: o.AuthMethod,
		GrantTypes: slices.Clone(o.GrantTypes), Audiences: slices.Clone(o.Audiences), Scopes: slices.Clone(o.Scopes),
		Issuers: slices.Clone(o.Issuers), JWKS: string(o.JWKS)}
	if err := cc.check("", nil); err != nil {
		return nil, err
	}
	if cc.JWKS != "" {
		cc.keys, _ = parseClientJWKS(cc.JWKS) // checked above
	}
	return &Client{ClientConfig: cc, Stored: true}, nil
}

// CheckRegistration checks an OAuth registration before it is stored:
// every error names the field (a *runtime.ValidationError).
func CheckRegistration(clientID string, o authz.OAuthClient) error {
	_, err := StoredClient(authz.Application{ClientID: clientID, OAuth: &o})
	var ve *runtime.ValidationError
	if errors.As(err, &ve) {
		ve.Entity, ve.ID = "client", clientID
	}
	return err
}

// configClients is the ClientLookup of the exchange section's clients.
type configClients map[string]*Client

func (c configClients) LookupClient(_ context.Context, id string) (*Client, error) {
	if cl := c[id]; cl != nil {
		return cl, nil
	}
	return nil, fmt.Errorf("client %q: %w", id, runtime.ErrNotFound)
}

// lookup finds id among the configured clients first, then in the store:
// a configured client always wins (the admin API refuses to register its
// id, but an import may bring one).
func (e *Exchanger) lookup(ctx context.Context, id string) (*Client, error) {
	cl, err := e.config.LookupClient(ctx, id)
	if err == nil || e.store == nil {
		return cl, err
	}
	return e.store.LookupClient(ctx, id)
}

// ConfigClientIDs are the ids of the exchange section's clients: the admin
// API refuses to register a store client with one of them.
func (c *Config) ConfigClientIDs() []string {
	ids := make([]string, 0, len(c.Clients))
	for _, cl := range c.Clients {
		ids = append(ids, cl.ClientID)
	}
	return ids
}
