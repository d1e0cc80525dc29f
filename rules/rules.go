// Package rules holds claimsmith's built-in login rules, one small file
// each. Every rule is a runtime.Rule built by a New… constructor that
// receives its dependencies (store, clock, namespace) and a runtime.Decoder
// for its strictly decoded settings; cmd/claimsmith registers them in a
// runtime.Registry. There is no global registry and no init().
//
//	authorization           groups, roles, permissions from the store; claims; persist  (votes: abstain)
//	required-roles          client.metadata.required_roles gate, `unauthorized`         (deny or abstain)
//	require-verified-email  deny unverified emails, `unauthorized`                       (deny or abstain)
//	allowed-connections     per-client allow-list of connections                         (deny or abstain)
//	time-window             days and hours in a time zone                                (deny or abstain)
//	copy-metadata-claims    app/user metadata keys into namespaced claims                (abstain)
//	add-request-context     IP and GeoIP country into namespaced claims                  (abstain)
//
// Their settings are documented on the …Config types and, with examples, in
// samples/config/claimsmith.yaml. Each rule has golden tests in
// testdata/<rule>/ (an event in, the pipeline's result out); `go test
// ./rules -update` rewrites them.
package rules

import (
	"strings"

	"github.com/claimsmith/claimsmith/runtime"
)

// IDs of the built-in rules, as a pipeline entry's `rule:` names them.
const (
	IDAuthorization        = "authorization"
	IDRequiredRoles        = "required-roles"
	IDRequireVerifiedEmail = "require-verified-email"
	IDAllowedConnections   = "allowed-connections"
	IDTimeWindow           = "time-window"
	IDCopyMetadataClaims   = "copy-metadata-claims"
	IDAddRequestContext    = "add-request-context"
)

// Tokens selects the tokens a rule writes claims to.
type Tokens struct {
	IDToken     bool `json:"id_token"`
	AccessToken bool `json:"access_token"`
}

// set puts a claim on the selected tokens.
func (t Tokens) set(out *runtime.Commands, name string, value any) {
	if t.IDToken {
		out.IDToken.Claims.Set(name, value)
	}
	if t.AccessToken {
		out.AccessToken.Claims.Set(name, value)
	}
}

// claimName puts name under the namespace unless it is a URL already (or
// there is no namespace: the operator allowed unnamespaced claims).
func claimName(namespace, name string) string { return runtime.QualifiedClaimName(namespace, name) }

// checkClaim refuses, at start-up, a configured claim name the pipeline
// would refuse at every login (runtime.CheckClaimName).
func checkClaim(key, claim string) error { return runtime.CheckClaimName(key, claim) }

// splitList splits a comma-separated metadata value, trimming spaces and
// dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func displayName(c runtime.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ClientID
}
