package login

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/claimsmith/claimsmith/hooks"
	"github.com/claimsmith/claimsmith/runtime"
)

// Zitadel Actions v2 (REFERENCE.md §4): a restCall target on the functions
// preaccesstoken (JWT access tokens) and preuserinfo (ID token, userinfo,
// introspection). Zitadel signs the body with the target's signing key.

// ZitadelSignatureHeader carries "t=<unix>,v1=<hex HMAC-SHA256>".
const ZitadelSignatureHeader = "ZITADEL-Signature"

// DefaultZitadelTolerance is Zitadel's own tolerance for its signatures.
const DefaultZitadelTolerance = 300 * time.Second

// Zitadel functions claimsmith answers.
const (
	ZitadelPreAccessToken = "preaccesstoken"
	ZitadelPreUserinfo    = "preuserinfo"
)

const schemeZitadel = "zitadel-signature"

// ZitadelVerifier checks ZITADEL-Signature headers and refuses a replay of
// a signed request within the tolerance window. The signing key is used as
// raw UTF-8 bytes, as Zitadel does (it is not base64-decoded).
//
// Zitadel sends no message id, so the request's id is derived from what
// the signature covers: SHA-256 of the timestamp and the body. Not from the
// header: during a key change it carries one signature per key, and a
// replay presenting only one of them would otherwise get a new id. Two
// byte-identical calls within the same second (the same user's token
// requested twice in one second, with nothing in the body differing) are
// indistinguishable from a replay: the second is refused (401) and Zitadel
// fails that token request.
type ZitadelVerifier struct {
	keys      [][]byte
	tolerance time.Duration
	now       func() time.Time
	replay    *replayGuard
}

// NewZitadelVerifier accepts one or more signing keys (several during a key
// change); tolerance 0 means DefaultZitadelTolerance. Its replay check is
// an in-process cache of DefaultReplayCacheSize ids (the hooks
// configuration gives the server's one instead).
func NewZitadelVerifier(keys []string, tolerance time.Duration, now func() time.Time) (*ZitadelVerifier, error) {
	v := &ZitadelVerifier{tolerance: tolerance, now: hooks.NowFunc(now), replay: &replayGuard{store: NewReplayCache(0)}}
	if v.tolerance <= 0 {
		v.tolerance = DefaultZitadelTolerance
	}
	for i, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("%w: zitadel signing key #%d is empty", runtime.ErrInvalid, i+1)
		}
		v.keys = append(v.keys, []byte(k))
	}
	if len(v.keys) == 0 {
		return nil, fmt.Errorf("%w: zitadel: at least one signing key is required", runtime.ErrInvalid)
	}
	return v, nil
}

// SignZitadel returns a ZITADEL-Signature header value for key (as Zitadel's
// ComputeSignatureHeader does).
func SignZitadel(key string, t time.Time, body []byte) string {
	return "t=" + strconv.FormatInt(t.Unix(), 10) + ",v1=" + hex.EncodeToString(zitadelMAC([]byte(key), strconv.FormatInt(t.Unix(), 10), body))
}

func zitadelMAC(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks the header against body and refuses a replay (401; a
// replay store that cannot answer: 503/504). It returns the request's id
// for Release. Unlike Zitadel's own helper it also refuses timestamps more
// than the tolerance in the future, so a leaked signature cannot be
// pre-dated.
func (v *ZitadelVerifier) Verify(ctx context.Context, header string, body []byte) (string, error) {
	ts, err := v.verifySignature(header, body)
	if err != nil {
		return "", err
	}
	id := ZitadelRequestID(ts, body)
	sent := time.Unix(ts, 0)
	if v.replay == nil {
		return id, nil // hooks.zitadel.replay_check: false
	}
	// Remembered until the timestamp leaves the window, as webhook ids.
	if err := v.replay.remember(ctx, schemeZitadel, id, v.now(), sent.Add(v.tolerance)); err != nil {
		return "", err
	}
	return id, nil
}

// Release forgets a verified request's id again (see WebhookVerifier.Release).
func (v *ZitadelVerifier) Release(ctx context.Context, id string) {
	if v.replay != nil {
		v.replay.forget(ctx, id)
	}
}

// ZitadelRequestID is the replay id of a signed Zitadel request: hex
// SHA-256 of "<unix timestamp>.<body>", what the signature covers.
func ZitadelRequestID(ts int64, body []byte) string {
	h := sha256.New()
	h.Write(strconv.AppendInt(nil, ts, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// verifySignature checks the header's timestamp window and signatures and
// returns the timestamp.
func (v *ZitadelVerifier) verifySignature(header string, body []byte) (int64, error) {
	ts, sigs, err := ParseZitadelSignature(header)
	if err != nil {
		return 0, err
	}
	sent := time.Unix(ts, 0)
	if d := v.now().Sub(sent); d > v.tolerance || d < -v.tolerance {
		return 0, hooks.AuthFailure(schemeZitadel, "timestamp is %s away from now, outside the %s tolerance", d.Truncate(time.Second).Abs(), v.tolerance)
	}
	tsRaw := strconv.FormatInt(ts, 10)
	ok := 0
	for _, k := range v.keys {
		want := zitadelMAC(k, tsRaw, body)
		for _, s := range sigs {
			if hmac.Equal(want, s) {
				ok = 1
			}
		}
	}
	if ok != 1 {
		return 0, hooks.AuthFailure(schemeZitadel, "no v1 signature matches")
	}
	return ts, nil
}

// ParseZitadelSignature reads "t=<unix>,v1=<hex>[,v1=<hex>…]". Unknown
// parts are skipped; the timestamp and at least one well-formed v1 are
// required.
func ParseZitadelSignature(header string) (int64, [][]byte, error) {
	if header == "" {
		return 0, nil, hooks.AuthFailure(schemeZitadel, "missing %s header", ZitadelSignatureHeader)
	}
	parts := strings.Split(header, ",")
	if len(parts) > maxSignatureEntries+1 {
		return 0, nil, hooks.AuthFailure(schemeZitadel, "header has %d parts, at most %d allowed", len(parts), maxSignatureEntries+1)
	}
	var (
		ts    int64
		haveT bool
		sigs  [][]byte
	)
	for _, p := range parts {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return 0, nil, hooks.AuthFailure(schemeZitadel, "malformed part %q", truncate(p, 32))
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || haveT {
				return 0, nil, hooks.AuthFailure(schemeZitadel, "bad or repeated timestamp %q", truncate(val, 32))
			}
			ts, haveT = n, true
		case "v1":
			b, err := hex.DecodeString(val)
			if err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	if !haveT {
		return 0, nil, hooks.AuthFailure(schemeZitadel, "no t=<unix seconds> part")
	}
	if len(sigs) == 0 {
		return 0, nil, hooks.AuthFailure(schemeZitadel, "no v1=<hex HMAC-SHA256> part")
	}
	return ts, sigs, nil
}

// PatternZitadel is the Zitadel dialect's route.
const PatternZitadel = "POST /hooks/zitadel/{function}"

// ZitadelConfig configures Zitadel Actions v2.
type ZitadelConfig struct {
	SigningKey    string `yaml:"signing_key"`
	SigningKeyEnv string `yaml:"signing_key_env"`
	ClientID      string `yaml:"client_id"`
	Connection    string `yaml:"connection"`
	// ReplayCheck (default true) refuses a signed request already received
	// within the tolerance window. Zitadel sends no message id: a second
	// byte-identical call within the same second (an ID token and a
	// userinfo call of one session, same scopes) is refused too; false
	// turns the check off, leaving the 5-minute timestamp window alone.
	ReplayCheck *bool `yaml:"replay_check"`
}

func zitadelKind() Kind {
	return Kind{Name: "zitadel", Example: zitadelExample, Build: fromSection(func(c *Config) *ZitadelConfig { return c.Zitadel }),
		Routes: []Route{{PatternZitadel, "Zitadel Actions v2 (preaccesstoken|preuserinfo, ZITADEL-Signature)"}}}
}

const zitadelExample = `zitadel:
  signing_key_env: CLAIMSMITH_ZITADEL_SIGNING_KEY   # the target's signingKey (several joined by |)
  client_id: ""                    # when Zitadel names no application
  connection: zitadel
  replay_check: true               # refuse a signed request received before (within 5 min); Zitadel sends no
                                   # message id, so a byte-identical call in the same second is refused too
`

func (zc *ZitadelConfig) secret() (string, string, string) {
	return "zitadel.signing_key", zc.SigningKey, zc.SigningKeyEnv
}

func (zc *ZitadelConfig) build(deps Deps, key string) ([]*Handler, error) {
	v, err := NewZitadelVerifier(splitSecrets(key), 0, deps.Now)
	if err != nil {
		return nil, fmt.Errorf("hooks.zitadel.signing_key_env: %w", err)
	}
	v.replay = deps.Replays.guard("zitadel", deps.replayCapacity)
	if zc.ReplayCheck != nil && !*zc.ReplayCheck {
		v.replay = nil
	}
	return []*Handler{{Dialect: &Zitadel{Verifier: v, ClientID: zc.ClientID, Connection: zc.Connection}}}, nil
}

// Zitadel is the dialect of POST /hooks/zitadel/{function}.
type Zitadel struct {
	Verifier *ZitadelVerifier
	// ClientID is used when the request names no application (older Zitadel
	// versions send no "application"); default "zitadel".
	ClientID string
	// Connection is the connection name rules and mappings see (default "zitadel").
	Connection string
}

// ZitadelRequest is the part of Zitadel's ContextInfo we read.
type ZitadelRequest struct {
	Function string         `json:"function"`
	UserInfo map[string]any `json:"userinfo"`
	User     *struct {
		ID                 string `json:"id"`
		Username           string `json:"username"`
		PreferredLoginName string `json:"preferred_login_name"`
		Human              *struct {
			FirstName       string `json:"first_name"`
			LastName        string `json:"last_name"`
			NickName        string `json:"nick_name"`
			DisplayName     string `json:"display_name"`
			Email           string `json:"email"`
			IsEmailVerified bool   `json:"is_email_verified"`
			Phone           string `json:"phone"`
		} `json:"human"`
		Machine *struct {
			Name string `json:"name"`
		} `json:"machine"`
	} `json:"user"`
	UserMetadata []ZitadelMetadata `json:"user_metadata"`
	Org          *struct {
		ID            string `json:"id"`
		Name          string `json:"name"`
		PrimaryDomain string `json:"primary_domain"`
	} `json:"org"`
	// UserGrants' keys are Go field names in Zitadel (ProjectID, Roles);
	// encoding/json matches them case-insensitively.
	UserGrants []struct {
		ProjectID string   `json:"projectId"`
		Roles     []string `json:"roles"`
	} `json:"user_grants"`
	Application *struct {
		ClientID string `json:"client_id"`
	} `json:"application"`
}

// ZitadelMetadata is one user metadata entry; Value is base64 in JSON.
type ZitadelMetadata struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// ZitadelClaim is one appended claim.
type ZitadelClaim struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// ZitadelResponse is Zitadel's ContextInfoResponse, or a forwarded error.
type ZitadelResponse struct {
	SetUserMetadata       []ZitadelMetadata `json:"set_user_metadata,omitempty"`
	AppendClaims          []ZitadelClaim    `json:"append_claims,omitempty"`
	AppendLogClaims       []string          `json:"append_log_claims,omitempty"`
	ForwardedStatusCode   int               `json:"forwardedStatusCode,omitempty"`
	ForwardedErrorMessage string            `json:"forwardedErrorMessage,omitempty"`
}

// zitadelReservedPrefix: Zitadel drops appended claims under it.
const zitadelReservedPrefix = "urn:zitadel:iam"

type zitadelExchange struct {
	d      *Zitadel
	fn     string
	header string
}

// Accept checks the function the path names and that the request is signed.
func (d *Zitadel) Accept(r *http.Request) (Exchange, error) {
	fn := r.PathValue("function")
	if fn != ZitadelPreAccessToken && fn != ZitadelPreUserinfo {
		return nil, fmt.Errorf("%w: zitadel function %q (want %s or %s)", runtime.ErrNotFound, fn, ZitadelPreAccessToken, ZitadelPreUserinfo)
	}
	h := r.Header.Get(ZitadelSignatureHeader)
	if h == "" {
		return nil, hooks.AuthFailure(schemeZitadel, "missing %s header", ZitadelSignatureHeader)
	}
	return &zitadelExchange{d: d, fn: fn, header: h}, nil
}

func (x *zitadelExchange) Verify(ctx context.Context, body []byte) (func(context.Context), error) {
	id, err := x.d.Verifier.Verify(ctx, x.header, body)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) { x.d.Verifier.Release(ctx, id) }, nil
}

func (x *zitadelExchange) Decode(body []byte) (Login, error) {
	req, err := DecodeZitadelRequest(body)
	if err != nil {
		return Login{}, err
	}
	if got := functionSuffix(req.Function); got != x.fn {
		return Login{}, &runtime.ValidationError{Entity: "zitadel request", Field: "function", Reason: fmt.Sprintf("%q does not match the endpoint's %q", req.Function, x.fn)}
	}
	ev, err := req.Event(x.d.ClientID, x.d.Connection)
	if err != nil {
		return Login{}, err
	}
	return Login{Event: ev, Attrs: []slog.Attr{slog.String("function", x.fn)}}, nil
}

func (x *zitadelExchange) Answer(_ context.Context, _ Login, res *runtime.Result) (int, any, error) {
	out, err := ZitadelAnswer(x.fn, res)
	return http.StatusOK, out, err
}

// functionSuffix returns the function name of "function/preaccesstoken"
// (Zitadel versions differ in the prefix, so only the suffix counts).
func functionSuffix(f string) string {
	if i := strings.LastIndexAny(f, "/."); i >= 0 {
		f = f[i+1:]
	}
	return strings.ToLower(f)
}

// DecodeZitadelRequest decodes a Zitadel ContextInfo body.
func DecodeZitadelRequest(body []byte) (*ZitadelRequest, error) {
	var req ZitadelRequest
	if err := runtime.DecodeJSON("zitadel request", body, &req); err != nil {
		return nil, err
	}
	if req.User == nil || req.User.ID == "" {
		return nil, &runtime.ValidationError{Entity: "zitadel request", Field: "user.id", Reason: "required"}
	}
	return &req, nil
}

// Event maps the request to the native event: the user's profile, the
// org (connection id), the roles of every user grant as IdP groups (so
// mappings can match them) and the user metadata, which claimsmith treats
// as app_metadata (Zitadel has one metadata store per user). A machine user
// is a credentials exchange.
func (req *ZitadelRequest) Event(defaultClient, connection string) (*runtime.Event, error) {
	ev := &runtime.Event{Trigger: runtime.TriggerPostLogin}
	u := req.User
	ev.User.UserID = u.ID
	ev.User.Username = firstNonEmpty(u.PreferredLoginName, u.Username)
	if hu := u.Human; hu != nil {
		ev.User.Email = hu.Email
		ev.User.EmailVerified = hu.IsEmailVerified
		ev.User.Name = firstNonEmpty(hu.DisplayName, strings.TrimSpace(hu.FirstName+" "+hu.LastName))
		ev.User.Nickname = hu.NickName
		ev.User.PhoneNumber = hu.Phone
	}
	if u.Machine != nil {
		ev.Trigger = runtime.TriggerCredentialsExchange
		ev.User.Name = u.Machine.Name
	}
	if req.Application != nil {
		ev.Client.ClientID = req.Application.ClientID
	}
	if ev.Client.ClientID == "" {
		if c, ok := req.UserInfo["client_id"].(string); ok {
			ev.Client.ClientID = c
		}
	}
	ev.Client.ClientID = firstNonEmpty(ev.Client.ClientID, defaultClient, "zitadel")
	ev.Connection.Name = firstNonEmpty(connection, "zitadel")
	if req.Org != nil {
		ev.Connection.ID = req.Org.ID
	}
	for _, g := range req.UserGrants {
		for _, role := range g.Roles {
			if !slices.Contains(ev.User.Groups, role) {
				ev.User.Groups = append(ev.User.Groups, role)
			}
		}
	}
	for _, m := range req.UserMetadata {
		if m.Key == "" {
			continue
		}
		if ev.User.AppMetadata == nil {
			ev.User.AppMetadata = make(map[string]any, len(req.UserMetadata))
		}
		ev.User.AppMetadata[m.Key] = metadataValue(m.Value)
	}
	ev.Transaction.Protocol = "oidc"
	return ev, nil
}

// metadataValue reads a metadata value as JSON when it is JSON (that is how
// claimsmith writes it), else as a string.
func metadataValue(b []byte) any {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err == nil && !dec.More() {
		return v
	}
	return string(b)
}

// ZitadelAnswer builds the response: append_claims from the access-token
// claims (preaccesstoken) or the ID-token claims (preuserinfo), the
// app_metadata patch as set_user_metadata (JSON values, base64 on the wire),
// and a deny as forwardedStatusCode 403 (with nothing else).
func ZitadelAnswer(fn string, res *runtime.Result) (*ZitadelResponse, error) {
	if !res.Decision.Allowed {
		// Zitadel fails the request with the forwarded status and reads
		// nothing else; metadata patches are still persisted by claimsmith.
		msg := res.Decision.Reason
		if msg == "" {
			msg = "access denied"
		}
		return &ZitadelResponse{ForwardedStatusCode: http.StatusForbidden, ForwardedErrorMessage: msg}, nil
	}
	out := &ZitadelResponse{}
	keys := make([]string, 0, len(res.AppMetadata))
	for k := range res.AppMetadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := res.AppMetadata[k]
		if v == nil {
			// set_user_metadata cannot delete; removal stays with Zitadel's API.
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("app_metadata %q: %w", k, err)
		}
		out.SetUserMetadata = append(out.SetUserMetadata, ZitadelMetadata{Key: k, Value: b})
	}
	claims := res.AccessTokenClaims
	if fn == ZitadelPreUserinfo {
		claims = res.IDTokenClaims
	}
	for _, c := range claims {
		if strings.HasPrefix(c.Name, zitadelReservedPrefix) {
			out.AppendLogClaims = append(out.AppendLogClaims, fmt.Sprintf("claimsmith: claim %q dropped: %s is reserved", c.Name, zitadelReservedPrefix))
			continue
		}
		out.AppendClaims = append(out.AppendClaims, ZitadelClaim{Key: c.Name, Value: c.Value})
	}
	return out, nil
}
