package hooks

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/claimsmith/claimsmith/runtime"
)

// ErrorBody is the stable JSON shape of every error claimsmith answers with
// (dialects that need another shape translate from it).
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// ErrUnsupportedMediaType is a request body in a format the endpoint does not
// take (for example not application/json). StatusOf answers 415.
var ErrUnsupportedMediaType = errors.New("unsupported media type")

// ProtocolError is an error whose answer a protocol fixes (OAuth 2.0,
// RFC 6749 §5.2: the code, the status and a challenge header): StatusOf and
// WriteError answer with what it says instead of mapping its sentinel.
type ProtocolError interface {
	error
	// HTTPAnswer is the status, the body and the extra headers.
	HTTPAnswer() (status int, body ErrorBody, header http.Header)
}

// StatusOf maps an error to its HTTP status and stable error code. This is
// the one place that does it; handlers call WriteError.
func StatusOf(err error) (int, string) {
	var mbe *http.MaxBytesError
	var pe ProtocolError
	if errors.As(err, &pe) {
		st, body, _ := pe.HTTPAnswer()
		return st, body.Error
	}
	switch {
	case errors.As(err, &mbe), errors.Is(err, runtime.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "request_too_large"
	case errors.Is(err, ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType, "unsupported_media_type"
	case errors.Is(err, runtime.ErrUnauthenticated):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, runtime.ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, runtime.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, runtime.ErrConflict), errors.Is(err, runtime.ErrExists), errors.Is(err, runtime.ErrInUse):
		return http.StatusConflict, "conflict"
	case errors.Is(err, runtime.ErrInvalid):
		return http.StatusBadRequest, "invalid_request"
	case errors.Is(err, runtime.ErrTimeout):
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, runtime.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	default:
		return http.StatusInternalServerError, "server_error"
	}
}

// WriteError answers with StatusOf(err) and an ErrorBody. Errors on our
// side (5xx) do not leak their text to the caller: it may carry a backend's
// internal address (go-redis names the host it dialled); the caller's
// handler logs it. See WriteErrorTrace.
func WriteError(w http.ResponseWriter, err error) { WriteErrorTrace(w, err, "") }

// WriteErrorTrace is WriteError naming traceID (when not empty) in the
// description of a 5xx answer, so that an operator can find the logged
// error the caller reports.
func WriteErrorTrace(w http.ResponseWriter, err error, traceID string) {
	var pe ProtocolError
	if errors.As(err, &pe) {
		status, body, header := pe.HTTPAnswer()
		for k, v := range header {
			w.Header()[k] = v
		}
		WriteJSON(w, status, body)
		return
	}
	status, code := StatusOf(err)
	if errors.Is(err, ErrBodyBudget) {
		// Spent within a second by stalled senders or a burst: retry soon.
		w.Header().Set("Retry-After", "1")
	}
	desc := err.Error()
	if status >= 500 {
		desc = serverErrorText(status)
		if traceID != "" {
			desc += " (trace id " + traceID + ")"
		}
	}
	WriteJSON(w, status, ErrorBody{Error: code, Description: desc})
}

// serverErrorText is the generic description of a 5xx status.
func serverErrorText(status int) string {
	switch status {
	case http.StatusServiceUnavailable:
		return "temporarily unavailable, retry later"
	case http.StatusGatewayTimeout:
		return "timed out, retry later"
	default:
		return "internal error"
	}
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
