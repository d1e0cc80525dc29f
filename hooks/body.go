package hooks

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claimsmith/claimsmith/runtime"
)

// DefaultMaxBody is the body limit of a request when its route or handler
// sets none. A login event with a generous app_metadata is a few KiB;
// Hydra's token hook body with a large consent session stays well under it.
const DefaultMaxBody = 256 << 10

// firstReadSize bounds the buffer a body is first read into; it grows as
// the bytes arrive. A declared Content-Length only ever makes it smaller (a
// caller may declare a length it never sends, so memory beyond this is
// spent only on bytes received).
const firstReadSize = 4 << 10

// LimitBody is the one place a request body limit is enforced: a declared
// Content-Length over limit is refused before anything is read or
// allocated, and the body is capped at limit bytes for whoever reads it
// (reading past it fails with *http.MaxBytesError, 413 in StatusOf).
// limit <= 0 means DefaultMaxBody. The server's routes, the reloadable hook
// routes and ReadBody all call it.
func LimitBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if r.ContentLength > limit {
		return fmt.Errorf("%w: request body of %d bytes exceeds the limit of %d", runtime.ErrTooLarge, r.ContentLength, limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return nil
}

// ReadBody reads the request body under LimitBody(limit), incrementally:
// memory grows with the bytes received, whatever Content-Length says.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, done, err := ReadBodyBudget(w, r, limit, nil)
	if done != nil {
		done()
	}
	return b, err
}

// ReadBodyBudget is ReadBody for a request whose sender is not
// authenticated yet (a signature over the body): every byte of buffer it
// holds, and the request's share of the server's per-request buffers, is
// first taken from budget, so the total memory of such requests in flight
// stays bounded however many callers declare large bodies and then stall.
// Over budget it refuses at once (ErrBodyBudget: 503, Retry-After) and
// makes the server close the connection without waiting for the rest of
// the body. done gives the bytes back: call it once the sender is
// authenticated, or the request is over. A nil budget charges nothing.
func ReadBodyBudget(w http.ResponseWriter, r *http.Request, limit int64, budget *BodyBudget) (_ []byte, done func(), err error) {
	if err := LimitBody(w, r, limit); err != nil {
		return nil, nil, err
	}
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	var held int64
	giveBack := func() { budget.release(held) }
	defer func() {
		if err != nil {
			giveBack()
		}
	}()
	// grow makes room for at least one more byte, within budget.
	grow := func(buf []byte, want int64) ([]byte, error) {
		want = min(want, limit+1) // room to read the EOF after a body at the limit
		if want <= int64(cap(buf)) {
			// MaxBytesReader fails first; never loop without room.
			return nil, fmt.Errorf("%w: request body exceeds the limit of %d bytes", runtime.ErrTooLarge, limit)
		}
		charge := want - int64(cap(buf))
		if held == 0 {
			charge += requestOverhead
		}
		if !budget.acquire(charge) {
			refuseRest(w)
			return nil, fmt.Errorf("%w: reading request body: %w", runtime.ErrUnavailable, ErrBodyBudget)
		}
		held += charge
		nb := make([]byte, len(buf), want)
		copy(nb, buf)
		return nb, nil
	}
	first := int64(firstReadSize)
	if r.ContentLength >= 0 && r.ContentLength < first {
		first = r.ContentLength + 1 // room to read the EOF without growing
	}
	buf, err := grow(nil, first)
	if err != nil {
		return nil, nil, err
	}
	for {
		if len(buf) == cap(buf) {
			if buf, err = grow(buf, 2*int64(cap(buf))); err != nil {
				return nil, nil, err
			}
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, giveBack, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, fmt.Errorf("request body exceeds the limit of %d bytes: %w", mbe.Limit, err)
			}
			return nil, nil, fmt.Errorf("%w: reading request body: %v", runtime.ErrInvalid, err)
		}
	}
}

// refuseRest makes the server close the connection after the answer
// instead of reading the rest of a refused body first (net/http discards
// up to 256 KiB of an unread body to keep the connection, which a stalling
// sender turns into a wait of server.read_timeout).
func refuseRest(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// ErrBodyBudget is the refusal of a request body while the budget of
// unauthenticated bodies in flight is spent (wrapped with
// runtime.ErrUnavailable: 503, with Retry-After).
var ErrBodyBudget = errors.New("too many unauthenticated request bodies in flight, retry later")

// DefaultBodyBudget bounds the memory of unauthenticated request bodies in
// flight (hooks.body_budget): about 2,700 concurrent stalled senders, far
// more than legitimate signed logins ever have in their body-read phase
// (microseconds each on a LAN).
const DefaultBodyBudget = 32 << 20

// requestOverhead is what a request being read costs besides its body
// buffer (net/http's read and write buffers of the connection, the request
// and response structures): charging it bounds the number of stalled
// requests, not only their bytes.
const requestOverhead = 8 << 10

// BodyBudget bounds the bytes held by request bodies being read before
// their sender is authenticated (ReadBodyBudget). Callers authenticated by
// a header (a bearer or API key) read outside it. Safe for concurrent use.
type BodyBudget struct {
	limit, used atomic.Int64
	refused     atomic.Uint64
}

// NewBodyBudget returns a budget of limit bytes (<= 0: DefaultBodyBudget).
func NewBodyBudget(limit int64) *BodyBudget {
	b := &BodyBudget{}
	b.SetLimit(limit)
	return b
}

// SetLimit changes the bound (a reload may change hooks.body_budget);
// bytes already held stay held until released.
func (b *BodyBudget) SetLimit(limit int64) {
	if limit <= 0 {
		limit = DefaultBodyBudget
	}
	b.limit.Store(limit)
}

// InUse is the number of bytes held now.
func (b *BodyBudget) InUse() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Refused is the number of requests refused over budget so far.
func (b *BodyBudget) Refused() uint64 {
	if b == nil {
		return 0
	}
	return b.refused.Load()
}

// acquire takes n bytes, or reports false (and counts a refusal) when that
// would exceed the limit. A nil budget always grants.
func (b *BodyBudget) acquire(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.limit.Load() {
			b.refused.Add(1)
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *BodyBudget) release(n int64) {
	if b != nil && n > 0 {
		b.used.Add(-n)
	}
}

// Register exposes the budget on reg: claimsmith_unauthenticated_body_bytes
// (held now), claimsmith_unauthenticated_body_budget_bytes (the bound) and
// claimsmith_unauthenticated_body_refusals_total.
func (b *BodyBudget) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "claimsmith_unauthenticated_body_bytes",
			Help: "Bytes held by request bodies being read before their sender is authenticated (signed webhooks), with each request's share of the server's buffers."},
			func() float64 { return float64(b.InUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "claimsmith_unauthenticated_body_budget_bytes",
			Help: "Bound of claimsmith_unauthenticated_body_bytes (hooks.body_budget); at it, signed requests get 503 with Retry-After."},
			func() float64 { return float64(b.limit.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "claimsmith_unauthenticated_body_refusals_total",
			Help: "Requests refused with 503 because the budget of unauthenticated request bodies in flight was spent."},
			func() float64 { return float64(b.Refused()) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// RequireJSON refuses a request whose Content-Type is not application/json
// in UTF-8. A charset parameter is allowed only when it says UTF-8 (Hydra
// sends "application/json; charset=UTF-8"): JSON is UTF-8 (RFC 8259 §8.1),
// and a body declared as UTF-16 would otherwise be parsed as UTF-8 and
// mean something other than what its sender wrote.
func RequireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q, want application/json", ErrUnsupportedMediaType, ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fmt.Errorf("%w: Content-Type %q: charset %q, want UTF-8", ErrUnsupportedMediaType, ct, truncateParam(cs))
	}
	return nil
}

// truncateParam keeps a caller's parameter short in the error text.
func truncateParam(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
