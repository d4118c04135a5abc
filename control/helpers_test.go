package control_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
)

var ctx = context.Background()

// TestMain keeps the servers' warnings (refused peers) out of the output.
func TestMain(m *testing.M) {
	slog.SetDefault(quietLogger())
	os.Exit(m.Run())
}

// shortDir returns a new folder with a short path: Unix socket paths are
// limited to about 100 bytes, and t.TempDir's can be longer.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "usctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openControlled opens a store in a new folder and serves its control
// socket beside it.
func openControlled(t *testing.T, opts *usersessions.Options) (*usersessions.Store, *control.Server) {
	t.Helper()
	store := openStore(t, filepath.Join(shortDir(t), "s.db"), opts)
	ctl, err := control.Serve(store, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	return store, ctl
}

func openStore(t *testing.T, path string, opts *usersessions.Options) *usersessions.Store {
	t.Helper()
	if opts == nil {
		opts = &usersessions.Options{}
	}
	opts.CleanupInterval = -1
	opts.Logger = quietLogger()
	store, err := usersessions.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func dial(t *testing.T, path string) *control.Client {
	t.Helper()
	c, err := control.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func create(t testing.TB, store *usersessions.Store, user string, c usersessions.Client) *usersessions.Session {
	t.Helper()
	s, err := store.Create(ctx, user, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fileless is a Backend without a file (a database server, say) that
// holds no sessions.
type fileless struct{ usersessions.Backend }

func (fileless) Open(context.Context, time.Duration, *slog.Logger) (time.Duration, error) {
	return 0, nil
}
func (fileless) Count(context.Context) (int, error) { return 0, nil }
func (fileless) Close() error                       { return nil }

// fakeApp serves handler on a Unix socket, in place of an app, for what a
// real one never does (a reply cut short); GET /v1/info answers as an app
// would, so Dial works.
func fakeApp(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "fake.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"path":"fake.db","count":0}`)
	})
	mux.Handle("/", handler)
	srv := &http.Server{Handler: mux, ErrorLog: slog.NewLogLogger(quietLogger().Handler(), slog.LevelError)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return path
}
