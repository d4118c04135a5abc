package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/usersessions/usersessions"
)

// Server serves a Store's control socket. Start one with Serve.
type Server struct {
	store *usersessions.Store
	path  string
	fi    os.FileInfo // the socket file, to remove only ours
	srv   *http.Server
	log   *slog.Logger

	served chan struct{} // closed when srv.Serve has returned

	mu       sync.Mutex
	closed   bool           // Close began: no new handler starts
	handlers sync.WaitGroup // running handlers, for Close to wait on
}

// The server's limits: nothing a client does (or stops doing) keeps a
// connection, or a handler, for long.
const (
	// readTimeout bounds reading a request; requests have no body.
	readTimeout = 10 * time.Second
	// idleTimeout closes a kept-alive connection that sends nothing.
	idleTimeout = 30 * time.Second
	// maxHeaderBytes bounds a request's headers.
	maxHeaderBytes = 64 << 10
)

// writeStall bounds each write of a reply: a listing or a backup may take
// long in all, but a client that stops reading is cut off soon. A variable
// for the test of that.
var writeStall = 10 * time.Second

// Serve serves store's control socket at path, "" meaning
// SocketPath(store.Path()) beside a database file, until Shutdown or Close.
// A stale socket left by a process that died is replaced; a live one
// (another server) or any other file at path is an error.
func Serve(store *usersessions.Store, path string) (*Server, error) {
	if path == "" {
		if _, ok := store.Backend().(fileSpacer); !ok {
			return nil, fmt.Errorf("usersessions: control socket: %s has no file to put a socket beside; pass a path", store.Path())
		}
		path = SocketPath(store.Path())
	}
	ln, fi, err := listen(path)
	if err != nil {
		return nil, err
	}
	s := &Server{store: store, path: path, fi: fi, log: slog.Default(), served: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           s.guard(s.routes()),
		ConnContext:       withPeer,
		ReadHeaderTimeout: readTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("usersessions: control socket stopped", "path", path, "err", err)
		}
	}()
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Shutdown stops serving gracefully: it removes the socket file (if it is
// still this server's), refuses new connections, and waits until the
// requests in progress are answered or ctx ends. Then it returns ctx's
// error, and Close ends what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	rerr := s.removeSocket()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		return err
	}
	<-s.served
	return rerr
}

// Close stops serving at once: it removes the socket file (if it is still
// this server's), ends open connections, and waits for their handlers to
// return (a handler whose connection is gone stops at its next write).
// Closing twice, after Shutdown, or a nil *Server (a Serve that failed),
// is harmless.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	rerr := s.removeSocket()
	err := s.srv.Close()
	<-s.served
	s.handlers.Wait()
	if err != nil {
		return err
	}
	return rerr
}

// removeSocket removes the socket file if it is still the one this server
// made: another server may have replaced it.
func (s *Server) removeSocket() error {
	fi, err := os.Lstat(s.path)
	if err != nil || !os.SameFile(fi, s.fi) {
		return nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("usersessions: control socket %s: %w", s.path, err)
	}
	return nil
}

// guard runs every request: it answers only an allowed peer, counts the
// handler for Close, and bounds each write of the reply.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
		defer sw.extend() // for the server's last flush, after the handler
		if err := allowed(r.Context()); err != nil {
			s.log.Warn("usersessions: control socket: request refused", "path", s.path, "err", err)
			writeError(sw, err)
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			writeError(sw, usersessions.ErrClosed)
			return
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		defer s.handlers.Done()
		next.ServeHTTP(sw, r)
	})
}

// stallWriter gives each write of a reply writeStall to go out.
type stallWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

func (w *stallWriter) extend() { w.rc.SetWriteDeadline(time.Now().Add(writeStall)) }

// Unwrap lets http.ResponseController reach the server's writer.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
