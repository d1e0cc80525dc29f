package login

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/claimsmith/claimsmith/runtime"
)

// jsonAppender is an answer that writes its own JSON, byte for byte what
// encoding/json would write, into the handler's pooled buffer.
type jsonAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// answerBuffers recycles the answers' buffers (one per concurrent login).
type answerBuffers struct{ pool sync.Pool }

// write answers status and body as hooks.WriteJSON does (same headers,
// same bytes, the trailing newline of json.Encoder included), unless the
// body fails to encode itself: false, nothing written, and the caller
// falls back to hooks.WriteJSON.
func (p *answerBuffers) write(w http.ResponseWriter, status int, body jsonAppender) bool {
	bp, _ := p.pool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer p.pool.Put(bp)
	b, err := body.AppendJSON((*bp)[:0])
	if err != nil {
		return false
	}
	b = append(b, '\n')
	if cap(b) <= 64<<10 { // a rare huge answer is not kept
		*bp = b
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return true
}

// AppendJSON appends the answer as encoding/json encodes it.
func (r *NativeResponse) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = runtime.AppendJSONString(append(b, `{"trace_id":`...), r.TraceID)
	b = r.Decision.AppendJSON(append(b, `,"decision":`...))
	if b, err = r.IDTokenClaims.AppendJSON(append(b, `,"id_token_claims":`...)); err != nil {
		return nil, err
	}
	if b, err = r.AccessTokenClaims.AppendJSON(append(b, `,"access_token_claims":`...)); err != nil {
		return nil, err
	}
	if len(r.ScopesAdded) > 0 {
		b, _ = runtime.AppendJSON(append(b, `,"scopes_added":`...), r.ScopesAdded)
	}
	if len(r.ScopesRemoved) > 0 {
		b, _ = runtime.AppendJSON(append(b, `,"scopes_removed":`...), r.ScopesRemoved)
	}
	if len(r.AppMetadata) > 0 {
		if b, err = runtime.AppendJSON(append(b, `,"app_metadata":`...), r.AppMetadata); err != nil {
			return nil, err
		}
	}
	if len(r.UserMetadata) > 0 {
		if b, err = runtime.AppendJSON(append(b, `,"user_metadata":`...), r.UserMetadata); err != nil {
			return nil, err
		}
	}
	if r.Authorization != nil {
		b = r.Authorization.AppendJSON(append(b, `,"authorization":`...))
	}
	if t := r.Tokens; t != nil {
		b = append(b, `,"tokens":{`...)
		n := len(b)
		field := func(name, v string) {
			if v == "" {
				return
			}
			if len(b) > n {
				b = append(b, ',')
			}
			b = runtime.AppendJSONString(append(append(b, '"'), name...), v)
		}
		field(`id_token":`, t.IDToken)
		field(`access_token":`, t.AccessToken)
		field(`token_type":`, t.TokenType)
		if t.ExpiresIn != 0 {
			if len(b) > n {
				b = append(b, ',')
			}
			b = strconv.AppendInt(append(b, `"expires_in":`...), t.ExpiresIn, 10)
		}
		field(`scope":`, t.Scope)
		b = append(b, '}')
	}
	if len(r.Degraded) > 0 {
		b, _ = runtime.AppendJSON(append(b, `,"degraded":`...), r.Degraded)
	}
	return append(b, '}'), nil
}
