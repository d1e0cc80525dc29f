package runtime

// Trigger names the moment an identity provider calls claimsmith.
type Trigger string

// Triggers claimsmith understands. The names follow Auth0 Actions.
const (
	TriggerPostLogin           Trigger = "post-login"
	TriggerCredentialsExchange Trigger = "credentials-exchange"
)

// Event is the native login event, modelled on Auth0 Actions' post-login event
// (snake_case JSON). Rules see it as earlier rules left it: the pipeline merges
// earlier metadata patches into User and fills Authorization.
type Event struct {
	Trigger       Trigger        `json:"trigger"`
	User          User           `json:"user"`
	Client        Client         `json:"client"`
	Connection    Connection     `json:"connection"`
	Request       Request        `json:"request"`
	Transaction   Transaction    `json:"transaction"`
	Authorization *Authorization `json:"authorization,omitempty"`
	// Secrets are operator-configured values handed to rules (Actions'
	// event.secrets). Never logged, never put into a token by claimsmith.
	Secrets map[string]string `json:"secrets,omitempty"`
}

// User is the person (or, for credentials-exchange, the machine client) logging in.
type User struct {
	UserID        string `json:"user_id"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	Nickname      string `json:"nickname,omitempty"`
	Username      string `json:"username,omitempty"`
	PhoneNumber   string `json:"phone_number,omitempty"`
	Picture       string `json:"picture,omitempty"`
	// Groups are the groups the IdP connection reports (e.g. AD/LDAP groups);
	// authorization mappings match against them.
	Groups       []string       `json:"groups,omitempty"`
	AppMetadata  map[string]any `json:"app_metadata,omitempty"`
	UserMetadata map[string]any `json:"user_metadata,omitempty"`
	Identities   []Identity     `json:"identities,omitempty"`
	CreatedAt    string         `json:"created_at,omitempty"`
	LastLogin    string         `json:"last_login,omitempty"`
	LoginsCount  int            `json:"logins_count,omitempty"`
	// LastPasswordReset is when the user last changed their password
	// (RFC 3339), as Auth0's user profile has it.
	LastPasswordReset string `json:"last_password_reset,omitempty"`
}

// Identity is one linked identity of the user.
type Identity struct {
	Connection string `json:"connection,omitempty"`
	Provider   string `json:"provider,omitempty"`
	UserID     string `json:"user_id,omitempty"`
	IsSocial   bool   `json:"is_social,omitempty"`
}

// Client is the application the user logs in to. Metadata values are strings,
// as in Auth0 (for example required_roles: "admin, editor").
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
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Hostname  string            `json:"hostname,omitempty"`
	Method    string            `json:"method,omitempty"`
	Language  string            `json:"language,omitempty"`
	Query     map[string]string `json:"query,omitempty"`
	GeoIP     *GeoIP            `json:"geoip,omitempty"`
}

// GeoIP is what the IdP resolved the request IP to, when it did.
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
	// ID identifies the transaction for traces and idempotency.
	ID string `json:"id,omitempty"`
}

// Authorization is what the authorization rule resolved; later rules read it.
type Authorization struct {
	Groups      []string `json:"groups"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
}
