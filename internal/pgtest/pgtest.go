// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb into
// a temporary directory, a postmaster that listens only on a private unix
// socket directory (no TCP at all), and pg_ctl stop -m immediate at the end.
// Only tests import it.
//
// Outside CI (the environment variable CI is not "true") a test that needs
// PostgreSQL is skipped, with a message saying so, when initdb, pg_ctl or
// postgres cannot be found; under CI=true it fails instead.
//
// The cluster keeps PostgreSQL's defaults, fsync and synchronous_commit on:
// tests measure what production would see, and a commit that returned is
// durable.
//
// When the tests run as root, the cluster belongs to the "postgres" OS user
// (PostgreSQL refuses to run as root): initdb, pg_ctl and the postmaster run
// through runuser, and the temporary directory is handed to that user.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/usersessions/usersessions/internal/needs"
)

// Port is the port number in the socket file's name (.s.PGSQL.Port). The
// socket directory is private to each cluster, so every cluster can use it.
const Port = 5432

// Cluster is one running (or stopped) throwaway PostgreSQL cluster.
type Cluster struct {
	dir     string // temporary root: data/, sock/, log
	data    string
	sock    string
	logFile string
	bin     string // directory of initdb, pg_ctl, postgres
	asUser  string // OS user to run PostgreSQL as ("" for the current one)

	mu      sync.Mutex
	stopped bool
	removed bool
	tables  int

	watchdog *os.Process // see startWatchdog
}

// binDirs are searched, in order, for initdb, pg_ctl and postgres before PATH.
var binDirs = []string{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"}

// findBin returns the directory holding initdb, pg_ctl and postgres.
func findBin() (string, error) {
	if d := os.Getenv("PGTEST_BIN"); d != "" {
		return d, nil
	}
	for _, d := range binDirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("PostgreSQL not found: no initdb in /usr/lib/postgresql/{15,16,17}/bin or PATH (apt-get install postgresql-15)")
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	d := filepath.Dir(p)
	if !isExec(filepath.Join(d, "pg_ctl")) || !isExec(filepath.Join(d, "postgres")) {
		return "", fmt.Errorf("PostgreSQL incomplete: %s has initdb but not pg_ctl and postgres", d)
	}
	return d, nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// unavailable skips the test, or fails it under CI=true (see package needs).
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	needs.Missing(tb, "pgtest: "+err.Error())
}

// Start starts a new cluster for tb alone and stops and removes it when tb
// ends. Use it for tests that stop, restart or freeze the server; other
// tests share one cluster per test binary through Shared.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := newCluster()
	if err != nil {
		if errors.Is(err, errNotInstalled) {
			unavailable(tb, err)
		}
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

var errNotInstalled = errors.New("PostgreSQL not installed")

type notInstalled struct{ err error }

func (e notInstalled) Error() string { return e.err.Error() }
func (e notInstalled) Is(target error) bool {
	return target == errNotInstalled
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the test binary's shared cluster, starting it on first
// use. The test binary must run its tests through Main, which stops it.
// Tests on the shared cluster keep apart by using their own tables or
// databases (see Cluster.Table and Cluster.NewDatabase).
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	shared.once.Do(func() { shared.c, shared.err = newCluster() })
	if shared.err != nil {
		if errors.Is(shared.err, errNotInstalled) {
			unavailable(tb, shared.err)
		}
		tb.Fatalf("pgtest: %v", shared.err)
	}
	return shared.c
}

// Main runs the tests of m and then stops the shared cluster, if one was
// started; it returns m.Run's exit code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared.c != nil {
		shared.c.Close()
	}
	return code
}

// newCluster runs initdb and starts the postmaster.
func newCluster() (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, notInstalled{err}
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root needs the OS user postgres to run PostgreSQL as: %v", err)
		}
		c.asUser = "postgres"
	}
	// Not t.TempDir: its parent is private to root, and the postgres user
	// must reach the data and socket directories.
	c.dir, err = os.MkdirTemp("", "pgtest")
	if err != nil {
		return nil, err
	}
	c.data = filepath.Join(c.dir, "data")
	c.sock = filepath.Join(c.dir, "sock")
	c.logFile = filepath.Join(c.dir, "postgres.log")
	for _, d := range []string{c.sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			c.remove()
			return nil, err
		}
	}
	if err := os.WriteFile(c.logFile, nil, 0o600); err != nil {
		c.remove()
		return nil, err
	}
	if err := os.Chmod(c.dir, 0o755); err != nil {
		c.remove()
		return nil, err
	}
	if c.asUser != "" {
		if err := c.chown(); err != nil {
			c.remove()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := c.run(ctx, "initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions"); err != nil {
		c.remove()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := c.Start(); err != nil {
		c.remove()
		return nil, err
	}
	c.startWatchdog()
	return c, nil
}

// startWatchdog starts a shell, in a process group of its own, that stops
// the cluster and removes its directory if the test binary dies without
// calling Close (a panic, a -timeout, a kill): no postmaster outlives it.
func (c *Cluster) startWatchdog() {
	stop := fmt.Sprintf("%s -D %s stop -m immediate -w -t 30", shellQuote(filepath.Join(c.bin, "pg_ctl")), shellQuote(c.data))
	if c.asUser != "" {
		stop = "runuser -u " + c.asUser + " -- " + stop
	}
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s",
		os.Getpid(), stop, shellQuote(c.dir))
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err == nil {
		c.watchdog = cmd.Process
		go func() { _ = cmd.Wait() }()
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// chown hands the temporary directory to the postgres user.
func (c *Cluster) chown() error {
	u, err := user.Lookup(c.asUser)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(c.dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// run runs one of PostgreSQL's programs, as the cluster's OS user.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// Start starts the postmaster (again, after Stop) and waits until it
// accepts connections.
func (c *Cluster) Start() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -p %d", c.sock, Port)
	out, err := c.run(ctx, "pg_ctl", "start", "-w", "-t", "50", "-D", c.data, "-l", c.logFile, "-o", opts)
	if err != nil {
		log, _ := os.ReadFile(c.logFile)
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail(log, 4000))
	}
	c.mu.Lock()
	c.stopped = false
	c.mu.Unlock()
	return nil
}

// Stop stops the postmaster at once (pg_ctl stop -m immediate): every
// connection drops, as in a crash; the next Start recovers from the WAL.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.run(ctx, "pg_ctl", "stop", "-w", "-t", "50", "-m", "immediate", "-D", c.data)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	c.stopped = true
	return nil
}

// Restart is Stop then Start.
func (c *Cluster) Restart() error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.Start()
}

// Close stops the cluster and removes its directory. It is safe to call
// more than once.
func (c *Cluster) Close() {
	if err := c.Stop(); err != nil {
		// Last resort, so that no postmaster outlives the test binary.
		if pid, perr := c.PostmasterPID(); perr == nil {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
		}
	}
	c.remove()
	if c.watchdog != nil {
		_ = c.watchdog.Kill()
	}
}

func (c *Cluster) remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.removed && c.dir != "" {
		_ = os.RemoveAll(c.dir)
		c.removed = true
	}
}

// DSN returns a connection string for database db ("" for postgres) as the
// superuser postgres, over the cluster's unix socket.
func (c *Cluster) DSN(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", c.sock, Port, db)
}

// SocketDir is the directory of the cluster's unix socket.
func (c *Cluster) SocketDir() string { return c.sock }

// Log returns the end of the server's log, for failure messages.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(c.logFile)
	return string(tail(b, 8000))
}

// Table returns a table name no other test on this cluster was given, so
// that tests sharing a cluster keep apart.
func (c *Cluster) Table(prefix string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tables++
	return fmt.Sprintf("%s_%d", prefix, c.tables)
}

// NewDatabase creates a fresh database and returns its DSN.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := c.Table("db")
	c.Exec(tb, "CREATE DATABASE "+name)
	return c.DSN(name)
}

// Exec runs sql on the postgres database as the superuser.
func (c *Cluster) Exec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(""))
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// PostmasterPID returns the process ID of the running postmaster, from the
// first line of postmaster.pid.
func (c *Cluster) PostmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// BackendPIDs returns the process IDs of the server processes serving
// connections whose application_name is app.
func (c *Cluster) BackendPIDs(ctx context.Context, app string) ([]int, error) {
	conn, err := pgx.Connect(ctx, c.DSN(""))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", app)
	if err != nil {
		return nil, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	out := make([]int, len(pids))
	for i, p := range pids {
		out[i] = int(p)
	}
	return out, nil
}

// WaitBackendPID waits (up to timeout) for exactly one connection named app
// and returns the PID of its server process.
func (c *Cluster) WaitBackendPID(tb testing.TB, app string, timeout time.Duration) int {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pids, err := c.BackendPIDs(ctx, app)
		cancel()
		if err == nil && len(pids) == 1 {
			return pids[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("pgtest: no single connection %q after %v: pids %v, err %v", app, timeout, pids, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Terminate ends the server process pid with pg_terminate_backend, as an
// administrator or a failover would.
func (c *Cluster) Terminate(tb testing.TB, pid int) {
	tb.Helper()
	c.Exec(tb, "SELECT pg_terminate_backend($1)", pid)
}

// Freeze stops the server process pid with SIGSTOP, so that its connection
// stays open but never answers: a hung server or a silent network. It is
// resumed (SIGCONT) by the returned function and, at the latest, when tb
// ends.
func Freeze(tb testing.TB, pid int) (thaw func()) {
	tb.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		tb.Fatalf("pgtest: SIGSTOP %d: %v", pid, err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	tb.Cleanup(thaw)
	return thaw
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
