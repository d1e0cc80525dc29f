package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
	"github.com/claimsmith/claimsmith/runtime/authz"
	"github.com/claimsmith/claimsmith/runtime/exchange"
	"github.com/claimsmith/claimsmith/runtime/token"
)

// OAuth clients registered in the store: an application's registration at
// the token endpoint (authz.OAuthClient). Writes are ordinary audited
// changes of the application record, so every backend persists them, the
// ETag is the store revision and the token endpoint learns of them as it
// learns of any write (the store revision). A secret is generated, shown
// once in the answer of create or rotate, and stored only as its SHA-256
// (token.HashSecret: 256 random bits need no slow hash); nothing shows it
// or its hash again.

// Client audit actions.
const (
	ActionClientCreate = "client.create"
	ActionClientRotate = "client.rotate_secret"
	ActionClientDelete = "client.delete"
)

// ClientSpec is a client registration as an operator asks for it.
type ClientSpec struct {
	ClientID string `json:"client_id"`
	// Name names the application when it is new (an existing application
	// keeps its name and metadata).
	Name string `json:"name,omitempty"`
	// AuthMethod is client_secret_basic (default), client_secret_post or
	// private_key_jwt (which needs JWKS and gets no secret).
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// GrantTypes default to token exchange only.
	GrantTypes []string        `json:"grant_types,omitempty"`
	Audiences  []string        `json:"audiences,omitempty"`
	Scopes     []string        `json:"scopes,omitempty"`
	Issuers    []string        `json:"issuers,omitempty"`
	JWKS       json.RawMessage `json:"jwks,omitempty"`
}

// ClientView is a registered client as the admin API shows it: never the
// secret, nor its hash.
type ClientView struct {
	ClientID   string          `json:"client_id"`
	Name       string          `json:"name,omitempty"`
	AuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes []string        `json:"grant_types"`
	Audiences  []string        `json:"audiences,omitempty"`
	Scopes     []string        `json:"scopes,omitempty"`
	Issuers    []string        `json:"issuers,omitempty"`
	JWKS       json.RawMessage `json:"jwks,omitempty"`
	// HasSecret tells whether the client authenticates with a secret.
	HasSecret bool      `json:"has_secret"`
	SecretSet time.Time `json:"secret_set,omitzero"`
}

// ClientCredentials is the answer of create and rotate: the view and the
// secret, which is shown this once.
type ClientCredentials struct {
	ClientView
	ClientSecret string `json:"client_secret,omitempty"`
}

// ClientViewOf renders a's registration; ok is false when it has none.
func ClientViewOf(a authz.Application) (ClientView, bool) {
	o := a.OAuth
	if o == nil {
		return ClientView{}, false
	}
	return ClientView{ClientID: a.ClientID, Name: a.Name, AuthMethod: o.AuthMethod, GrantTypes: slices.Clone(o.GrantTypes),
		Audiences: slices.Clone(o.Audiences), Scopes: slices.Clone(o.Scopes), Issuers: slices.Clone(o.Issuers),
		JWKS: slices.Clone(o.JWKS), HasSecret: o.SecretHash != "", SecretSet: o.SecretSet}, true
}

func findApplication(doc *authz.Document, id string) (authz.Application, bool) {
	if doc != nil && doc.Claimsmith != nil {
		for _, a := range doc.Claimsmith.Applications {
			if a.ClientID == id {
				return a, true
			}
		}
	}
	return authz.Application{}, false
}

// clientState renders the audited client (no secret, no hash).
func clientState(id string) func(*authz.Document) any {
	return func(doc *authz.Document) any {
		if a, ok := findApplication(doc, id); ok {
			if v, ok := ClientViewOf(a); ok {
				return v
			}
		}
		return nil
	}
}

func clientNotFound(id string) error {
	return fmt.Errorf("client %q: %w", id, runtime.ErrNotFound)
}

// newClientSecret generates a secret and its stored hash.
func newClientSecret() (secret, hash string, err error) {
	if secret, err = token.GenerateSecret(); err != nil {
		return "", "", err
	}
	hash, err = token.HashSecret(secret, false)
	return secret, hash, err
}

// CreateClient registers spec.ClientID as a client of the token endpoint:
// on its application (created when missing). An id that is already a
// client, or one of reserved (the exchange section's clients, which take
// precedence), is refused with runtime.ErrExists; a bad spec with a
// *runtime.ValidationError naming the field. The secret (none for
// private_key_jwt) is returned once.
func (s *Service) CreateClient(ctx context.Context, caller Caller, spec ClientSpec, reserved []string, m IfMatch) (ClientCredentials, Result, error) {
	id := spec.ClientID
	if err := authz.CheckID("client", "client_id", id); err != nil {
		return ClientCredentials{}, Result{}, err
	}
	if slices.Contains(reserved, id) {
		return ClientCredentials{}, Result{}, fmt.Errorf("client %q is configured in the exchange section, which takes precedence over the store: %w", id, runtime.ErrExists)
	}
	o := authz.OAuthClient{AuthMethod: spec.AuthMethod, GrantTypes: spec.GrantTypes, Audiences: spec.Audiences,
		Scopes: spec.Scopes, Issuers: spec.Issuers, JWKS: spec.JWKS}
	if o.AuthMethod == "" {
		o.AuthMethod = exchange.AuthSecretBasic
	}
	if len(o.GrantTypes) == 0 {
		o.GrantTypes = []string{exchange.GrantTokenExchange}
	}
	var secret string
	if o.AuthMethod != exchange.AuthPrivateKeyJWT {
		var err error
		if secret, o.SecretHash, err = newClientSecret(); err != nil {
			return ClientCredentials{}, Result{}, err
		}
		o.SecretSet = s.now().UTC().Truncate(time.Second)
	} else if len(spec.JWKS) > 0 && !json.Valid(spec.JWKS) {
		return ClientCredentials{}, Result{}, &runtime.ValidationError{Entity: "client", ID: id, Field: "jwks", Reason: "is not JSON"}
	}
	if err := exchange.CheckRegistration(id, o); err != nil {
		return ClientCredentials{}, Result{}, err
	}
	res, err := s.Apply(ctx, caller, Change{Action: ActionClientCreate, Entity: "client", ID: id,
		Reads: authz.Footprint{Applications: true}, State: clientState(id),
		Build: func(view *authz.Document, ch *Change) error {
			a, ok := findApplication(view, id)
			oc := o
			switch {
			case ok && a.OAuth != nil:
				return fmt.Errorf("client %q: %w", id, runtime.ErrExists)
			case ok:
				ch.Ops = []authz.Op{&authz.SetApplicationOAuth{ClientID: id, OAuth: &oc}}
			default:
				ch.Ops = []authz.Op{&authz.PutApplication{Application: authz.Application{ClientID: id, Name: spec.Name, OAuth: &oc}}}
			}
			return nil
		}}, m)
	if err != nil {
		return ClientCredentials{}, Result{}, err
	}
	return s.credentials(res, id, secret)
}

func (s *Service) credentials(res Result, id, secret string) (ClientCredentials, Result, error) {
	a, _ := findApplication(res.After, id)
	v, ok := ClientViewOf(a)
	if !ok {
		return ClientCredentials{}, res, clientNotFound(id)
	}
	return ClientCredentials{ClientView: v, ClientSecret: secret}, res, nil
}

// RotateClientSecret replaces a client's secret: the old one stops working
// as soon as a node learns the new store revision. The new secret is
// returned once. A private_key_jwt client has no secret (ErrInvalid).
func (s *Service) RotateClientSecret(ctx context.Context, caller Caller, id string, m IfMatch) (ClientCredentials, Result, error) {
	secret, hash, err := newClientSecret()
	if err != nil {
		return ClientCredentials{}, Result{}, err
	}
	set := s.now().UTC().Truncate(time.Second)
	res, err := s.Apply(ctx, caller, Change{Action: ActionClientRotate, Entity: "client", ID: id,
		Reads: authz.Footprint{Applications: true}, State: clientState(id),
		Build: func(view *authz.Document, ch *Change) error {
			a, ok := findApplication(view, id)
			if !ok || a.OAuth == nil {
				return clientNotFound(id)
			}
			if a.OAuth.AuthMethod == exchange.AuthPrivateKeyJWT {
				return &runtime.ValidationError{Entity: "client", ID: id, Field: "token_endpoint_auth_method",
					Reason: "is private_key_jwt: the client has keys, no secret to rotate"}
			}
			o := *a.OAuth
			o.SecretHash, o.SecretSet = hash, set
			ch.Ops = []authz.Op{&authz.SetApplicationOAuth{ClientID: id, OAuth: &o}}
			return nil
		}}, m)
	if err != nil {
		return ClientCredentials{}, Result{}, err
	}
	return s.credentials(res, id, secret)
}

// DeleteClient removes a client's registration. Its application stays
// (its roles and metadata still serve logins) unless the registration was
// all it had (no name, no metadata): then the record goes too.
func (s *Service) DeleteClient(ctx context.Context, caller Caller, id string, m IfMatch) (Result, error) {
	return s.Apply(ctx, caller, Change{Action: ActionClientDelete, Entity: "client", ID: id,
		Reads: authz.Footprint{Applications: true}, State: clientState(id),
		Build: func(view *authz.Document, ch *Change) error {
			a, ok := findApplication(view, id)
			if !ok || a.OAuth == nil {
				return clientNotFound(id)
			}
			if a.Name == "" && len(a.Metadata) == 0 {
				ch.Ops = []authz.Op{&authz.DeleteApplication{ClientID: id}}
				return nil
			}
			ch.Ops = []authz.Op{&authz.SetApplicationOAuth{ClientID: id}}
			return nil
		}}, m)
}

// Clients lists the registered clients (Q and Name match the client_id or
// the application's name), without secrets or hashes.
func (s *Service) Clients(ctx context.Context, lq ListQuery) (Page[ClientView], error) {
	if err := lq.Check(); err != nil {
		return Page[ClientView]{}, err
	}
	doc, rev, err := s.store.Records(ctx, authz.Footprint{Applications: true})
	if err != nil {
		return Page[ClientView]{}, err
	}
	var out []ClientView
	if doc.Claimsmith != nil {
		for _, a := range doc.Claimsmith.Applications {
			v, ok := ClientViewOf(a)
			if ok && (lq.Match(a.Name, "") || lq.Match(a.ClientID, "")) {
				out = append(out, v)
			}
		}
	}
	return Paginate(out, lq, rev), nil
}

// Client returns one registered client and the revision it was read at.
func (s *Service) Client(ctx context.Context, id string) (ClientView, uint64, error) {
	doc, rev, err := s.store.Records(ctx, authz.Footprint{Applications: true})
	if err != nil {
		return ClientView{}, 0, err
	}
	a, _ := findApplication(doc, id)
	v, ok := ClientViewOf(a)
	if !ok {
		return ClientView{}, rev, clientNotFound(id)
	}
	return v, rev, nil
}
