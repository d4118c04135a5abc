package control

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/usersessions/usersessions"
)

// ErrForbidden is the answer to a peer that runs neither as the socket's
// owner nor as root.
var ErrForbidden = errors.New("usersessions: control socket: only the app's own user or root may use it")

// errBadRequest marks a request the server cannot take: a query parameter
// it does not know, a value that does not parse.
var errBadRequest = errors.New("usersessions: control socket: bad request")

// errorReply is an error on the wire: a whole reply, or one line of a
// listing.
type errorReply struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// wireErrors maps the errors a reply can carry to their code and status,
// both ways.
var wireErrors = []struct {
	err    error
	code   string
	status int
}{
	{usersessions.ErrNotFound, "not_found", http.StatusNotFound},
	{usersessions.ErrCorrupt, "corrupt", http.StatusInternalServerError},
	{usersessions.ErrClosed, "closed", http.StatusServiceUnavailable},
	{usersessions.ErrUnavailable, "unavailable", http.StatusServiceUnavailable},
	{usersessions.ErrNotSupported, "not_supported", http.StatusNotImplemented},
	{ErrForbidden, "forbidden", http.StatusForbidden},
	{errBadRequest, "bad_request", http.StatusBadRequest},
}

// replyOf is err on the wire, with its status.
func replyOf(err error) (errorReply, int) {
	for _, e := range wireErrors {
		if errors.Is(err, e.err) {
			return errorReply{Error: err.Error(), Code: e.code}, e.status
		}
	}
	return errorReply{Error: err.Error(), Code: "internal"}, http.StatusInternalServerError
}

// writeError answers err.
func writeError(w http.ResponseWriter, err error) {
	rep, status := replyOf(err)
	writeJSON(w, status, rep)
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // a client that went away has nobody to tell
}

// remoteError is an error the app sent: its message as the app wrote it,
// wrapping the usersessions error it stands for, if any.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.err }

// errorOf turns a reply back into an error for errors.Is.
func errorOf(r errorReply) error {
	e := &remoteError{msg: r.Error}
	for _, w := range wireErrors {
		if w.code == r.Code {
			e.err = w.err
		}
	}
	if e.msg == "" {
		e.msg = "usersessions: control socket: an error without a message (" + r.Code + ")"
	}
	return e
}
