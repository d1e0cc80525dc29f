package guard

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/runtime"
)

// IntrospectionConfig configures an RFC 7662 client.
type IntrospectionConfig struct {
	// URL of the introspection endpoint (claimsmith: /oauth2/introspect).
	URL string
	// ClientID and ClientSecret authenticate with HTTP Basic (RFC 7662 §2.1).
	ClientID     string
	ClientSecret string
	// Params are extra form parameters, e.g. claimsmith's live=true to get
	// the user's current groups, roles and permissions.
	Params map[string]string
	// Client is the HTTP client (default: one with a 10s timeout).
	Client *http.Client
}

// Introspector asks an RFC 7662 endpoint about tokens.
type Introspector struct {
	cfg  IntrospectionConfig
	form url.Values
}

// NewIntrospector checks cfg.
func NewIntrospector(cfg IntrospectionConfig) (*Introspector, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "introspection.url", Reason: fmt.Sprintf("%q is not an http(s) URL", cfg.URL)}
	}
	if cfg.ClientID == "" {
		return nil, &runtime.ValidationError{Entity: "guard", Field: "introspection.client_id", Reason: "required: introspection callers authenticate"}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	form := url.Values{}
	for k, v := range cfg.Params {
		if k == "token" || k == "token_type_hint" {
			return nil, &runtime.ValidationError{Entity: "guard", Field: "introspection.params." + k, Reason: "set by the client itself"}
		}
		form.Set(k, v)
	}
	return &Introspector{cfg: cfg, form: form}, nil
}

// Introspect returns the answer's claims for an active token, an *AuthError
// for an inactive one, and an error matching runtime.ErrUnavailable when the
// endpoint could not be asked.
func (in *Introspector) Introspect(ctx context.Context, tok string) (map[string]any, error) {
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	for k, v := range in.form {
		form[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	resp, err := in.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: introspection: %v", runtime.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil || len(b) > maxDocBytes {
		return nil, fmt.Errorf("%w: introspection: reading the answer: %v", runtime.ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: introspection: status %d", runtime.ErrUnavailable, resp.StatusCode)
	}
	claims, err := decodeClaims(b)
	if err != nil {
		return nil, fmt.Errorf("%w: introspection: the answer is not a JSON object", runtime.ErrUnavailable)
	}
	if active, _ := claims["active"].(bool); !active {
		return nil, invalidToken(ErrInvalidToken, "inactive (introspection)")
	}
	return claims, nil
}
