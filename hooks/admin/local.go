package admin

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"

	radmin "github.com/claimsmith/claimsmith/runtime/admin"
)

// Local returns a transport that serves admin requests in-process for a
// caller the process has already identified (the CLI's direct mode, as the
// OS user): no network, no credential. The key's scopes are still checked
// route by route, and writes are audited under its name.
func (a *API) Local(key radmin.Key) http.RoundTripper { return localTransport{api: a, key: key} }

type localTransport struct {
	api *API
	key radmin.Key
}

// localCaller marks a request's context as coming from Local. Only this
// package can set it, and a request from the network never carries it.
type localCaller struct{}

func (t localTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := &localResponse{header: http.Header{}}
	t.api.mux.ServeHTTP(w, r.WithContext(contextWithLocal(r, t.key)))
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())), ContentLength: int64(w.body.Len()),
		Request: r,
	}, nil
}

// localResponse collects one in-process answer.
type localResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *localResponse) Header() http.Header { return w.header }

func (w *localResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *localResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

func contextWithLocal(r *http.Request, key radmin.Key) context.Context {
	return context.WithValue(r.Context(), localCaller{}, key)
}
