package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/usersessions/usersessions"
)

// routes maps the endpoints (see the package documentation) to handlers.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", s.info)
	mux.HandleFunc("GET /v1/sessions", s.list)
	mux.HandleFunc("GET /v1/sessions/{id}", s.get)
	mux.HandleFunc("DELETE /v1/sessions/{id}", s.end)
	mux.HandleFunc("DELETE /v1/users/{user}/sessions", s.endUser)
	mux.HandleFunc("POST /v1/clear-expired", s.clearExpired)
	mux.HandleFunc("GET /v1/check", s.check)
	mux.HandleFunc("GET /v1/backup", s.backup)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { noRoute(mux, w, r) })
	return mux
}

// noRoute answers a request no endpoint takes, in JSON like every error:
// 405 with Allow when the path has endpoints for other methods, else 404.
func noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, pattern := mux.Handler(&probe); pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		// Not "not_found": that code means ErrNotFound, no such session.
		writeJSON(w, http.StatusNotFound, errorReply{Error: "usersessions: control socket: no endpoint " + r.URL.Path, Code: "no_endpoint"})
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, errorReply{
		Error: fmt.Sprintf("usersessions: control socket: %s takes %s, not %s", r.URL.Path, strings.Join(allow, " or "), r.Method),
		Code:  "method_not_allowed"})
}

// noParams checks that r has no query; it answers and returns false when
// it has one.
func noParams(w http.ResponseWriter, r *http.Request) bool {
	if _, err := params(r.URL.Query()); err != nil {
		writeError(w, err)
		return false
	}
	return true
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	if !noParams(w, r) {
		return
	}
	n, err := s.store.Count(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, infoOf(s.store, n))
}

// list streams the sessions as NDJSON: one Session a line, and a record
// that cannot be read as an errorReply line; the listing goes on past it.
// Another error ends the listing with its line, or is the whole reply
// when it comes first. Store.All reads page by page outside transactions,
// so a client that reads slowly holds up no write.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	f, limit, err := parseList(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	started, n := false, 0
	for sess, err := range s.store.All(r.Context(), f) {
		fatal := err != nil && !errors.Is(err, usersessions.ErrCorrupt)
		if fatal && !started {
			writeError(w, err)
			return
		}
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			started = true
		}
		var line any
		if err != nil {
			line, _ = replyOf(err)
		} else {
			line = sessionOf(sess)
			n++
		}
		if enc.Encode(line) != nil || fatal || limit > 0 && n == limit {
			return // the client is gone, the listing failed, or it is long enough
		}
	}
	if !started {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if !noParams(w, r) {
		return
	}
	sess, err := s.store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionOf(sess))
}

// endReply answers the requests that end sessions.
type endReply struct {
	Ended int `json:"ended"`
}

func (s *Server) end(w http.ResponseWriter, r *http.Request) {
	o, _, err := parseEnd(r.URL.Query())
	if err == nil {
		err = s.store.End(r.Context(), r.PathValue("id"), o)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, endReply{Ended: 1})
}

func (s *Server) endUser(w http.ResponseWriter, r *http.Request) {
	o, get, err := parseEnd(r.URL.Query(), "keep")
	n := 0
	if err == nil {
		n, err = s.store.EndUser(r.Context(), r.PathValue("user"), get("keep"), o)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, endReply{Ended: n})
}

// clearReply answers POST /v1/clear-expired.
type clearReply struct {
	Removed int `json:"removed"`
}

func (s *Server) clearExpired(w http.ResponseWriter, r *http.Request) {
	if !noParams(w, r) {
		return
	}
	n, err := s.store.ClearExpired(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, clearReply{Removed: n})
}

// checkReply answers GET /v1/check: each problem wraps ErrCorrupt.
type checkReply struct {
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"`
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	if !noParams(w, r) {
		return
	}
	rep := checkReply{OK: true, Problems: []string{}}
	if err := s.store.Check(r.Context()); err != nil {
		if !errors.Is(err, usersessions.ErrCorrupt) {
			writeError(w, err)
			return
		}
		rep.OK = false
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, p := range joined.Unwrap() {
				rep.Problems = append(rep.Problems, p.Error())
			}
		} else {
			rep.Problems = append(rep.Problems, err.Error())
		}
	}
	writeJSON(w, http.StatusOK, rep)
}
