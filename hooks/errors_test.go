package hooks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

type protoErr struct{}

func (protoErr) Error() string { return "refused" }
func (protoErr) HTTPAnswer() (int, ErrorBody, http.Header) {
	return http.StatusUnauthorized, ErrorBody{Error: "invalid_client", Description: "who are you"},
		http.Header{"Www-Authenticate": {`Basic realm="x"`}}
}

// A protocol's own error shape (RFC 6749 §5.2) goes through the one writer:
// status, code, description and headers as the error says, also wrapped.
func TestWriteErrorProtocolError(t *testing.T) {
	err := fmt.Errorf("token endpoint: %w", protoErr{})
	rec := httptest.NewRecorder()
	WriteError(rec, err)
	var body ErrorBody
	if e := json.Unmarshal(rec.Body.Bytes(), &body); e != nil {
		t.Fatal(e)
	}
	if rec.Code != 401 || body != (ErrorBody{Error: "invalid_client", Description: "who are you"}) ||
		rec.Header().Get("WWW-Authenticate") != `Basic realm="x"` || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v %+v", rec.Code, rec.Header(), body)
	}
	if st, code := StatusOf(err); st != 401 || code != "invalid_client" {
		t.Fatalf("StatusOf = %d %s", st, code)
	}
}
