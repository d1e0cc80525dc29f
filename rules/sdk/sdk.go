// Package sdk is the Go SDK for claimsmith rule authors who compile their
// rules to WebAssembly. A rule is a function that reads a typed Event and
// records what it wants through an API shaped like Auth0 Actions' api object:
//
//	//go:build wasip1
//
//	package main
//
//	import "github.com/claimsmith/claimsmith/rules/sdk"
//
//	//go:wasmexport on_login
//	func onLogin() int32 { return sdk.Run(rule) }
//
//	func rule(ev *sdk.Event, api *sdk.API) error {
//		api.IDToken.SetCustomClaim("https://example.com/hello", ev.User.Email)
//		return nil
//	}
//
//	func main() {}
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o myrule.wasm ./myrule
//
// The JSON plumbing (the ABI in samples/rules/README.md) lives here: Handle
// decodes the event and encodes the commands and builds on any platform, so a
// rule can be unit-tested with `go test` on the host; Run (wasip1 only) wires
// Handle to the extism PDK and to claimsmith's host functions.
//
// Free-form objects (app_metadata, user_metadata, query) stay raw JSON until a
// rule asks for a key, so a login does not pay for decoding maps it never reads.
package sdk

import "encoding/json"

// Event is the login event claimsmith hands a rule (runtime.Event on the host).
type Event struct {
	Trigger       string            `json:"trigger"`
	User          User              `json:"user"`
	Client        Client            `json:"client"`
	Connection    Connection        `json:"connection"`
	Request       Request           `json:"request"`
	Transaction   Transaction       `json:"transaction"`
	Authorization *Authorization    `json:"authorization,omitempty"`
	Secrets       map[string]string `json:"secrets,omitempty"`
}

// Triggers a rule may be called for.
const (
	TriggerPostLogin           = "post-login"
	TriggerCredentialsExchange = "credentials-exchange"
)

// User is the person (or machine client) logging in.
type User struct {
	UserID        string          `json:"user_id"`
	Email         string          `json:"email,omitempty"`
	EmailVerified bool            `json:"email_verified,omitempty"`
	Name          string          `json:"name,omitempty"`
	Nickname      string          `json:"nickname,omitempty"`
	Username      string          `json:"username,omitempty"`
	PhoneNumber   string          `json:"phone_number,omitempty"`
	Picture       string          `json:"picture,omitempty"`
	Groups        []string        `json:"groups,omitempty"`
	AppMetadata   json.RawMessage `json:"app_metadata,omitempty"`
	UserMetadata  json.RawMessage `json:"user_metadata,omitempty"`
	Identities    []Identity      `json:"identities,omitempty"`
	CreatedAt     string          `json:"created_at,omitempty"`
	LastLogin     string          `json:"last_login,omitempty"`
	LoginsCount   int             `json:"logins_count,omitempty"`
}

// AppMetadataKey decodes app_metadata[key] into v and reports whether the
// key was present.
func (u *User) AppMetadataKey(key string, v any) (bool, error) {
	return rawKey(u.AppMetadata, "app_metadata", key, v)
}

// UserMetadataKey decodes user_metadata[key] into v and reports whether the
// key was present.
func (u *User) UserMetadataKey(key string, v any) (bool, error) {
	return rawKey(u.UserMetadata, "user_metadata", key, v)
}

// Identity is one linked identity of the user.
type Identity struct {
	Connection string `json:"connection,omitempty"`
	Provider   string `json:"provider,omitempty"`
	UserID     string `json:"user_id,omitempty"`
	IsSocial   bool   `json:"is_social,omitempty"`
}

// Client is the application the user logs in to. Metadata values are strings.
type Client struct {
	ClientID string            `json:"client_id"`
	Name     string            `json:"name,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Connection is the IdP connection the user authenticated with.
type Connection struct {
	ID       string `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Strategy string `json:"strategy,omitempty"`
}

// Request describes the HTTP request that started the login.
type Request struct {
	IP        string          `json:"ip,omitempty"`
	UserAgent string          `json:"user_agent,omitempty"`
	Hostname  string          `json:"hostname,omitempty"`
	Method    string          `json:"method,omitempty"`
	Language  string          `json:"language,omitempty"`
	Query     json.RawMessage `json:"query,omitempty"`
	GeoIP     *GeoIP          `json:"geoip,omitempty"`
}

// GeoIP is what the IdP resolved the request IP to.
type GeoIP struct {
	CountryCode string  `json:"country_code,omitempty"`
	CountryName string  `json:"country_name,omitempty"`
	CityName    string  `json:"city_name,omitempty"`
	Latitude    float64 `json:"latitude,omitempty"`
	Longitude   float64 `json:"longitude,omitempty"`
	TimeZone    string  `json:"time_zone,omitempty"`
}

// Transaction describes the authorization request being served.
type Transaction struct {
	RequestedScopes []string `json:"requested_scopes,omitempty"`
	Audience        string   `json:"audience,omitempty"`
	Protocol        string   `json:"protocol,omitempty"`
	GrantType       string   `json:"grant_type,omitempty"`
	Nonce           string   `json:"nonce,omitempty"`
	ID              string   `json:"id,omitempty"`
}

// Authorization is what the built-in authorization rule resolved (when it
// runs before this rule), and what Host.UserPolicy answers.
type Authorization struct {
	Groups      []string `json:"groups"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
}

// QueryParam returns the request's query parameter name.
func (r *Request) QueryParam(name string) (string, bool) {
	var s string
	ok, err := rawKey(r.Query, "request.query", name, &s)
	return s, ok && err == nil
}

// Has reports whether name is in list.
func Has(list []string, name string) bool {
	for _, s := range list {
		if s == name {
			return true
		}
	}
	return false
}
