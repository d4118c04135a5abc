package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
	"github.com/usersessions/usersessions/pgstore"
	"github.com/usersessions/usersessions/redisstore"
)

// operatorOpenTimeout is how long operator commands wait for a database
// held by another process: long enough for a process that is just closing
// it, short enough that a running app is reported at once.
const operatorOpenTimeout = 200 * time.Millisecond

// cacheDir is the folder of the default database and GeoIP downloads:
// "usersessions" in the user's cache directory, or in the temporary
// directory when there is no cache directory.
func cacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	return filepath.Join(base, "usersessions")
}

// defaultDBPath is the database every command uses without -db.
func defaultDBPath() string { return filepath.Join(cacheDir(), "demo.db") }

// dbFlags are the flags of every command that opens the session database.
type dbFlags struct {
	path string
	idle idleFlag

	probe     probeResult // what openExisting's check of the file found
	viaSocket bool        // openExisting reached the app's control socket
}

// idleFlag is -idle-timeout. Operator commands always open the file with
// usersessions.UseStoredIdleTimeout, so they never store a setting of their
// own (a stored timeout is what the app's next cleanup, and every later
// plain clear-expired, would apply). An -idle-timeout given on the command
// line is applied in memory only: to what ls and stats show, and, with
// clear-expired -force, to which sessions are removed.
type idleFlag struct {
	d   time.Duration
	set bool

	// stored is the idle timeout the store applies, as openExisting found
	// it. Deadlines without an override are computed from it, the same
	// way for a file opened here and for sessions that come from a running
	// app through its control socket.
	stored time.Duration
}

func (f *idleFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.d.String()
}

func (f *idleFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 30m, or 0 for none")
	}
	f.d, f.set = d, true
	return nil
}

// deadline is when s dies under the override, or under the store's own
// idle timeout when none was given.
func (f *idleFlag) deadline(s *usersessions.Session) time.Time {
	d := f.stored
	if f.set {
		d = f.d
	}
	dl := s.ExpiresAt
	if d > 0 {
		if idle := s.LastSeen.Add(d); idle.Before(dl) {
			dl = idle
		}
	}
	return dl
}

// active reports whether s is alive at now under the override.
func (f *idleFlag) active(s *usersessions.Session, now time.Time) bool {
	return now.Before(f.deadline(s))
}

// effective is the idle timeout in force for display: the override, or
// the store's.
func (f *idleFlag) effective(store sessionStore) time.Duration {
	if f.set {
		return f.d
	}
	return store.IdleTimeout()
}

func addDBFlags(fs *flag.FlagSet) *dbFlags {
	d := new(dbFlags)
	fs.StringVar(&d.path, "db", defaultDBPath(), "session database `file`, or the postgres:// or redis:// URL of the server app instances share (packages pgstore, redisstore)")
	fs.Var(&d.idle, "idle-timeout",
		"`duration` to treat as the idle timeout, in memory only (default: the app's, stored in the file)")
	return d
}

// storeOptions are the Options of operator commands: fail fast on a
// database in use, no background cleanup (the commands do their own work),
// the store's own warnings on stderr.
func storeOptions(d *dbFlags, stderr io.Writer) *usersessions.Options {
	return &usersessions.Options{
		IdleTimeout: usersessions.UseStoredIdleTimeout, // never store a setting

		OpenTimeout:     operatorOpenTimeout,
		CleanupInterval: -1,
		NoCache:         true,
		Logger:          slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// openExisting opens the database of an operator command. Unlike the demo
// it never creates one: a wrong -db is an error, not a new empty file.
// A PostgreSQL URL goes to openStore as it is.
func openExisting(d *dbFlags, stderr io.Writer) (sessionStore, error) {
	if isDatabaseURL(d.path) {
		return openStore(d.path, storeOptions(d, stderr))
	}
	if _, err := os.Stat(d.path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no session database at %s (start the demo or your app first, or pass -db)", d.path)
		}
		return nil, err
	}
	res, err := probeFile(d.path)
	if err != nil {
		return nil, err
	}
	d.probe = res
	store, err := openStore(d.path, storeOptions(d, stderr))
	if errors.Is(err, usersessions.ErrLocked) {
		// The app holds the file: act through its control socket, if it
		// serves one (control.Serve).
		if c, cerr := dialApp(d.path); cerr == nil {
			d.viaSocket = true
			d.idle.stored = c.Info().IdleTimeout
			return appStore{c}, nil
		} else if !errors.Is(cerr, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w; its control socket: %v", err, cerr)
		}
	}
	if err != nil {
		return nil, err
	}
	d.idle.stored = store.IdleTimeout()
	return store, nil
}

// sessionStore is what operator commands need of a store: a
// *usersessions.Store they opened, or an appStore talking to the app that
// holds the file.
type sessionStore interface {
	All(ctx context.Context, f usersessions.Filter) iter.Seq2[*usersessions.Session, error]
	Count(ctx context.Context) (int, error)
	Get(ctx context.Context, id string) (*usersessions.Session, error)
	End(ctx context.Context, id string, o usersessions.EndOptions) error
	EndUser(ctx context.Context, userID, keepID string, o usersessions.EndOptions) (int, error)
	ClearExpired(ctx context.Context) (int, error)
	Check(ctx context.Context) error
	IdleTimeout() time.Duration
	Path() string
	Close() error
}

// controlDialTimeout bounds reaching an app's control socket.
const controlDialTimeout = 2 * time.Second

// dialApp connects to the control socket of the app holding path.
func dialApp(path string) (*control.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), controlDialTimeout)
	defer cancel()
	return control.Dial(ctx, control.SocketPath(path))
}

// appStore is the store of a running app, through its control socket.
// Its sessions have no Deadline of their own (they did not come from a
// Store): the commands compute deadlines with idleFlag.deadline.
type appStore struct{ *control.Client }

func (a appStore) All(ctx context.Context, f usersessions.Filter) iter.Seq2[*usersessions.Session, error] {
	return func(yield func(*usersessions.Session, error) bool) {
		for s, err := range a.Client.All(ctx, f) {
			if !yield(fromApp(s), err) {
				return
			}
		}
	}
}

func (a appStore) Get(ctx context.Context, id string) (*usersessions.Session, error) {
	s, err := a.Client.Get(ctx, id)
	return fromApp(s), err
}

// IdleTimeout and Path are the app's, as Dial learned them.
func (a appStore) IdleTimeout() time.Duration { return a.Info().IdleTimeout }
func (a appStore) Path() string               { return a.Info().Path }

// fromApp is a session from the control socket as the commands use it;
// nil stays nil.
func fromApp(s *control.Session) *usersessions.Session {
	if s == nil {
		return nil
	}
	return &usersessions.Session{ID: s.ID, UserID: s.UserID, IP: s.IP, UserAgent: s.UserAgent,
		CreatedAt: s.CreatedAt, LastSeen: s.LastSeen, ExpiresAt: s.ExpiresAt}
}

// serverKinds name the database server of each URL scheme -db takes.
var serverKinds = map[string]string{
	"postgres": "PostgreSQL", "postgresql": "PostgreSQL",
	"redis": "Redis", "rediss": "Redis", "valkey": "Redis", "valkeys": "Redis", "unix": "Redis",
}

// What compact and backup, which work on files, say of each server.
var (
	serverSpace = map[string]string{
		"PostgreSQL": "which gives space back by itself (autovacuum; VACUUM FULL to shrink a table)",
		"Redis":      "which frees what removed sessions took by itself",
	}
	serverBackup = map[string]string{
		"PostgreSQL": "back it up with pg_dump",
		"Redis":      "back it up with the server's own persistence (BGSAVE, or the append-only file)",
	}
)

// serverKind is the kind of database server a -db value names
// ("PostgreSQL", "Redis"), or "" for a file.
func serverKind(db string) string {
	scheme, _, ok := strings.Cut(db, "://")
	if !ok {
		return ""
	}
	return serverKinds[strings.ToLower(scheme)]
}

// isDatabaseURL reports whether a -db value names a database server (a
// postgres://, postgresql://, redis://, rediss:// or unix:// URL, the last
// a Redis server's socket) rather than a file.
func isDatabaseURL(db string) bool { return serverKind(db) != "" }

// redactDB is a -db value fit for messages: a URL's password (in the user
// part or the password parameter) replaced by "xxxxx", and a URL that does
// not parse not shown at all, since it may hold one.
func redactDB(db string) string {
	if !isDatabaseURL(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "(a " + strings.ToLower(db[:strings.Index(db, "://")]) + ":// URL that does not parse)"
	}
	if q := u.Query(); q.Has("password") { // libpq's other place for it
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// serverConnectTimeout bounds reaching a database server.
const serverConnectTimeout = 10 * time.Second

// openStore opens the session database named by a -db value: a bbolt
// file, or a database server for a URL (openURL). It is the one place where commands open a store, and it turns
// the store's errors into plain messages.
func openStore(db string, opts *usersessions.Options) (*usersessions.Store, error) {
	if isDatabaseURL(db) {
		return openURL(db, opts)
	}
	path := db
	store, err := usersessions.Open(path, opts)
	if err == nil {
		return store, nil
	}
	// The store's message is "open PATH: usersessions: ..."; the path is
	// already in ours.
	detail := strings.TrimPrefix(err.Error(), "open "+path+": ")
	detail = strings.TrimPrefix(detail, "usersessions: ")
	switch {
	case errors.Is(err, usersessions.ErrLocked):
		return nil, &openError{err, fmt.Sprintf("%s is in use by another process (is the app running?)", path)}
	case errors.Is(err, usersessions.ErrSchema):
		return nil, &openError{err, fmt.Sprintf("%s is not a usersessions database, or one written by a newer version (%s)", path, detail)}
	case errors.Is(err, usersessions.ErrCorrupt):
		return nil, &openError{err, fmt.Sprintf("%s is damaged and cannot be read (%s)", path, detail)}
	}
	return nil, err
}

// openURL opens the database server at dsn: PostgreSQL (package pgstore,
// its default table "usersessions") or Redis (package redisstore, its
// default key prefix "usersessions"), the server that app instances
// share, which the commands may use while the apps run. Errors name
// redactDB(dsn), never the password.
func openURL(dsn string, opts *usersessions.Options) (*usersessions.Store, error) {
	shown, kind := redactDB(dsn), serverKind(dsn)
	ctx, cancel := context.WithTimeout(context.Background(), serverConnectTimeout)
	defer cancel()
	var b usersessions.Backend
	var err error
	if kind == "Redis" {
		b, err = openRedis(ctx, dsn)
	} else {
		b, err = openPostgres(ctx, dsn)
	}
	if err != nil {
		if errors.Is(err, usersessions.ErrUnavailable) {
			return nil, &openError{err, fmt.Sprintf("cannot reach the %s server of -db %s", kind, shown)}
		}
		return nil, &openError{err, fmt.Sprintf("-db %s: cannot open the %s database (check the URL)", shown, kind)}
	}
	store, err := usersessions.NewStore(b, opts) // closes b on failure
	if err != nil {
		return nil, &openError{err, fmt.Sprintf("-db %s: %v", shown, err)}
	}
	return store, nil
}

// openPostgres and openRedis return the Backend of a URL, nil on failure
// (not a nil pointer in an interface).
func openPostgres(ctx context.Context, dsn string) (usersessions.Backend, error) {
	b, err := pgstore.Open(ctx, dsn, nil)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func openRedis(ctx context.Context, url string) (usersessions.Backend, error) {
	b, err := redisstore.Open(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// openError is an Open failure with a message for people; errors.Is still
// sees the store's error.
type openError struct {
	err error
	msg string
}

func (e *openError) Error() string { return e.msg }
func (e *openError) Unwrap() error { return e.err }

// closeStore closes store, keeping the first error.
func closeStore(store sessionStore, err *error) {
	if cerr := store.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("closing %s: %w", store.Path(), cerr)
	}
}

// signalContext is canceled by SIGINT or SIGTERM, so long work stops
// between transactions and the store is closed cleanly.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
