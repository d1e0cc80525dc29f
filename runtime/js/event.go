package js

import (
	"github.com/claimsmith/claimsmith/runtime"
)

// The host gives the engine the event already in the shape the rule's
// style reads (Auth0's Actions event; a Rule's user and context): shaping
// it here, in Go, costs microseconds, and inside the sandbox it was a good
// part of every call. The guest only attaches secrets and configuration.

// emptyObject and emptyArray encode as {} and [] (Auth0 always has these
// members, where claimsmith's event omits them when empty).
type emptyObject struct{}

type emptyArray = [0]string

func objectOr[M ~map[K]V, K comparable, V any](m M) any {
	if m == nil {
		return emptyObject{}
	}
	return m
}

func arrayOr[S ~[]E, E any](s S) any {
	if s == nil {
		return emptyArray{}
	}
	return s
}

// actionUser is event.user: claimsmith's user with app_metadata,
// user_metadata and identities always present.
type actionUser struct {
	*runtime.User
	AppMetadata  any `json:"app_metadata"`
	UserMetadata any `json:"user_metadata"`
	Identities   any `json:"identities"`
}

func shapeUser(u *runtime.User) actionUser {
	return actionUser{User: u, AppMetadata: objectOr(u.AppMetadata), UserMetadata: objectOr(u.UserMetadata), Identities: arrayOr(u.Identities)}
}

type actionClient struct {
	*runtime.Client
	Metadata any `json:"metadata"`
}

type actionRequest struct {
	*runtime.Request
	Query any `json:"query"`
}

type actionTransaction struct {
	*runtime.Transaction
	RequestedScopes any `json:"requested_scopes"`
}

type actionAuthorization struct {
	Roles       any `json:"roles"`
	Groups      any `json:"groups"`
	Permissions any `json:"permissions"`
}

type actionStats struct {
	LoginsCount int `json:"logins_count"`
}

// actionEvent is an Action's event (post-login and credentials-exchange
// alike), without secrets and configuration, which the engine adds.
type actionEvent struct {
	Trigger       runtime.Trigger     `json:"trigger"`
	User          actionUser          `json:"user"`
	Client        actionClient        `json:"client"`
	Connection    *runtime.Connection `json:"connection"`
	Request       actionRequest       `json:"request"`
	Transaction   actionTransaction   `json:"transaction"`
	Authorization actionAuthorization `json:"authorization"`
	Stats         actionStats         `json:"stats"`
}

func shapeAction(ev *runtime.Event) *actionEvent {
	var az runtime.Authorization
	if ev.Authorization != nil {
		az = *ev.Authorization
	}
	return &actionEvent{
		Trigger:       ev.Trigger,
		User:          shapeUser(&ev.User),
		Client:        actionClient{Client: &ev.Client, Metadata: objectOr(ev.Client.Metadata)},
		Connection:    &ev.Connection,
		Request:       actionRequest{Request: &ev.Request, Query: objectOr(ev.Request.Query)},
		Transaction:   actionTransaction{Transaction: &ev.Transaction, RequestedScopes: arrayOr(ev.Transaction.RequestedScopes)},
		Authorization: actionAuthorization{Roles: arrayOr(az.Roles), Groups: arrayOr(az.Groups), Permissions: arrayOr(az.Permissions)},
		Stats:         actionStats{LoginsCount: ev.User.LoginsCount},
	}
}

// rulesContext is a Rule's context object.
type rulesContext struct {
	ClientID           string `json:"clientID"`
	ClientName         string `json:"clientName"`
	ClientMetadata     any    `json:"clientMetadata"`
	Connection         string `json:"connection"`
	ConnectionID       string `json:"connectionID"`
	ConnectionStrategy string `json:"connectionStrategy"`
	Protocol           string `json:"protocol"`
	Request            struct {
		IP        string      `json:"ip"`
		UserAgent string      `json:"userAgent"`
		Hostname  string      `json:"hostname"`
		Query     any         `json:"query"`
		Body      emptyObject `json:"body"`
		GeoIP     any         `json:"geoip"`
	} `json:"request"`
	Stats struct {
		LoginsCount int `json:"loginsCount"`
	} `json:"stats"`
	Authorization struct {
		Roles any `json:"roles"`
	} `json:"authorization"`
	IDToken     emptyObject `json:"idToken"`
	AccessToken struct {
		Scope any `json:"scope"`
	} `json:"accessToken"`
}

// rulesEvent is what a Rule is called with: user and context.
type rulesEvent struct {
	User    actionUser    `json:"user"`
	Context *rulesContext `json:"context"`
}

func shapeRule(ev *runtime.Event) *rulesEvent {
	c := &rulesContext{
		ClientID: ev.Client.ClientID, ClientName: ev.Client.Name, ClientMetadata: objectOr(ev.Client.Metadata),
		Connection: ev.Connection.Name, ConnectionID: ev.Connection.ID, ConnectionStrategy: ev.Connection.Strategy,
		Protocol: ev.Transaction.Protocol,
	}
	c.Request.IP, c.Request.UserAgent, c.Request.Hostname = ev.Request.IP, ev.Request.UserAgent, ev.Request.Hostname
	c.Request.Query = objectOr(ev.Request.Query)
	c.Request.GeoIP = emptyObject{}
	if ev.Request.GeoIP != nil {
		c.Request.GeoIP = ev.Request.GeoIP
	}
	c.Stats.LoginsCount = ev.User.LoginsCount
	c.Authorization.Roles = emptyArray{}
	if ev.Authorization != nil && ev.Authorization.Roles != nil {
		c.Authorization.Roles = ev.Authorization.Roles
	}
	c.AccessToken.Scope = arrayOr(ev.Transaction.RequestedScopes)
	return &rulesEvent{User: shapeUser(&ev.User), Context: c}
}
