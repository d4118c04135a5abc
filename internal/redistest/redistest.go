// Package redistest starts throwaway redis-server processes for tests: one
// per test (Start) or one per test binary (Shared), each in a temporary
// directory, listening only on a unix socket there (a single-node cluster
// listens on a loopback port instead: cluster nodes announce host:port).
// Only tests import it.
//
// Outside CI (the environment variable CI is not "true") a test that needs
// Redis is skipped, with a message saying so, when redis-server cannot be
// found; under CI=true it fails instead. Set REDISTEST_SERVER to use another
// binary (valkey-server, say).
//
// A server keeps nothing on disk unless Config.Persist asks for the
// append-only file with appendfsync always, as a deployment that must not
// lose a revocation would run it.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/usersessions/usersessions/internal/needs"
)

// Config selects how a server runs.
type Config struct {
	// Persist turns the append-only file on, fsynced on every write
	// (appendonly yes, appendfsync always): a restart keeps what was
	// written. Without it the server saves nothing and restarts empty.
	Persist bool
	// Cluster runs the server as a Redis Cluster of one node owning all
	// 16384 slots, on a loopback TCP port: it refuses any command or
	// script that touches keys of more than one slot (CROSSSLOT), as a
	// real cluster does.
	Cluster bool
}

// Server is one throwaway redis-server, running or stopped.
type Server struct {
	cfg  Config
	dir  string // temporary root: the socket, the log, the data
	sock string
	log  string
	bin  string
	port int // the cluster's TCP port; 0 for a unix socket only

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	prefixes int
	removed  bool
	watchdog *os.Process
}

// findServer returns the redis-server binary to run.
func findServer() (string, error) {
	if p := os.Getenv("REDISTEST_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found in PATH (apt-get install redis-server)")
	}
	return p, nil
}

// unavailable skips the test, or fails it under CI=true (see package needs).
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	needs.Missing(tb, "redistest: "+err.Error())
}

// Require skips tb (fails it under CI=true) when redis-server cannot be
// found.
func Require(tb testing.TB) {
	tb.Helper()
	if _, err := findServer(); err != nil {
		unavailable(tb, err)
	}
}

// Start starts a server for tb alone and stops and removes it when tb
// ends. Use it for tests that kill, restart or freeze the server.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	Require(tb)
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// New starts a server whose caller closes it (benchmarks that share one
// across a binary); Start is New for one test. A watchdog kills it if the
// process dies first.
func New(cfg Config) (*Server, error) {
	bin, err := findServer()
	if err != nil {
		return nil, err
	}
	return newServer(bin, cfg)
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the test binary's shared server (a unix socket, no
// persistence), starting it on first use. The test binary must run its
// tests through Main, which stops it. Tests on it keep apart by key prefix
// (Server.Prefix).
func Shared(tb testing.TB) *Server {
	tb.Helper()
	Require(tb)
	shared.once.Do(func() { shared.s, shared.err = New(Config{}) })
	if shared.err != nil {
		tb.Fatalf("redistest: %v", shared.err)
	}
	return shared.s
}

// Main runs the tests of m and then stops the shared server, if one was
// started; it returns m.Run's exit code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared.s != nil {
		shared.s.Close()
	}
	return code
}

func newServer(bin string, cfg Config) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, dir: dir, sock: filepath.Join(dir, "redis.sock"), log: filepath.Join(dir, "redis.log"), bin: bin}
	if cfg.Cluster {
		if s.port, err = freePort(); err != nil {
			s.remove()
			return nil, err
		}
	}
	if err := s.Start(); err != nil {
		s.remove()
		return nil, err
	}
	s.startWatchdog()
	return s, nil
}

// freePort returns a loopback TCP port that was free a moment ago, whose
// cluster bus port (+10000) is free too.
func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("no free pair of loopback ports for a cluster node")
}

// args are the server's command line.
func (s *Server) args() []string {
	args := []string{
		"--dir", s.dir,
		"--unixsocket", s.sock, "--unixsocketperm", "700",
		"--logfile", s.log,
		"--pidfile", filepath.Join(s.dir, "redis.pid"),
		"--save", "",
		"--daemonize", "no",
	}
	if s.cfg.Cluster {
		args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
	} else {
		args = append(args, "--port", "0")
	}
	if s.cfg.Persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	return args
}

// Start starts the server (again, after Kill) and waits until it answers
// PING (for a cluster, until it owns every slot).
func (s *Server) Start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("redistest: already running")
	}
	if !s.cfg.Persist {
		// Restart empty: nothing of the last run survives.
		for _, f := range []string{"dump.rdb", "appendonlydir", "nodes.conf"} {
			os.RemoveAll(filepath.Join(s.dir, f))
		}
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %v\n%s", err, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server does not answer after 30s: %v\n%s", err, s.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.cfg.Cluster {
		return s.claimSlots()
	}
	return nil
}

// ping sends PING over the unix socket.
func (s *Server) ping() error {
	conn, err := net.DialTimeout("unix", s.sock, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(buf[:n]), "+PONG") {
		return fmt.Errorf("PING answered %q", buf[:n])
	}
	return nil
}

// claimSlots gives the single cluster node every slot and waits for the
// cluster to report itself ok.
func (s *Server) claimSlots() error {
	c, err := s.unixClient()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Do(ctx, c.B().Arbitrary("CLUSTER", "ADDSLOTSRANGE", "0", "16383").Build()).Error()
	if err != nil && !strings.Contains(err.Error(), "already busy") {
		return fmt.Errorf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	for ctx.Err() == nil {
		info, err := c.Do(ctx, c.B().Arbitrary("CLUSTER", "INFO").Build()).ToString()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("the cluster node never reported cluster_state:ok")
}

// unixClient is a plain client on the unix socket, for the helpers.
func (s *Server) unixClient() (rueidis.Client, error) {
	opt, err := rueidis.ParseURL("unix://" + s.sock)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	opt.ForceSingleClient = true
	opt.DisableRetry = true
	return rueidis.NewClient(opt)
}

// startWatchdog starts a shell, in a process group of its own, that kills
// the server and removes its directory if the test binary dies without
// calling Close (a panic, a -timeout, a kill): no server outlives it.
func (s *Server) startWatchdog() {
	dir := "'" + strings.ReplaceAll(s.dir, "'", `'\''`) + "'"
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null; do sleep 1; done; kill -CONT $(cat %s/redis.pid) 2>/dev/null; kill -KILL $(cat %s/redis.pid) 2>/dev/null; rm -rf %s`,
		os.Getpid(), dir, dir, dir)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err == nil {
		s.watchdog = cmd.Process
		go func() { _ = cmd.Wait() }()
	}
}

// URL is the server's address for redisstore.Open: unix:///…/redis.sock,
// or redis://127.0.0.1:PORT for a cluster.
func (s *Server) URL() string {
	if s.cfg.Cluster {
		return fmt.Sprintf("redis://127.0.0.1:%d", s.port)
	}
	return "unix://" + s.sock
}

// Socket is the path of the server's unix socket.
func (s *Server) Socket() string { return s.sock }

// Prefix returns a key prefix no other caller on this server was given,
// so tests sharing a server keep apart.
func (s *Server) Prefix(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefixes++
	return fmt.Sprintf("%s%d", name, s.prefixes)
}

// PID is the running server's process ID (0 when stopped).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill ends the server with SIGKILL, as a crash would, and waits until it
// is gone. Without Persist the next Start is empty.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a frozen server dies too
	_ = cmd.Process.Kill()
	<-exited
	// A stale pid file must not lead the watchdog to another process.
	_ = os.Remove(filepath.Join(s.dir, "redis.pid"))
}

// Restart is Kill then Start.
func (s *Server) Restart() error {
	s.Kill()
	return s.Start()
}

// Freeze stops the server with SIGSTOP: its connections stay open but
// nothing answers, as with a hung server or a silent network. It is
// resumed by the returned function and, at the latest, when tb ends.
func (s *Server) Freeze(tb testing.TB) (thaw func()) {
	tb.Helper()
	pid := s.PID()
	if pid == 0 {
		tb.Fatal("redistest: Freeze of a stopped server")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		tb.Fatalf("redistest: SIGSTOP %d: %v", pid, err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	tb.Cleanup(thaw)
	return thaw
}

// Do runs one command on the server over its unix socket and returns the
// reply as text: arrays joined by newlines, "" for nil.
func (s *Server) Do(tb testing.TB, args ...string) string {
	tb.Helper()
	c, err := s.unixClient()
	if err != nil {
		tb.Fatalf("redistest: connect: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := c.Do(ctx, c.B().Arbitrary(args...).Build())
	if err := res.Error(); rueidis.IsRedisNil(err) {
		return ""
	} else if err != nil {
		tb.Fatalf("redistest: %s: %v", strings.Join(args, " "), err)
	}
	if list, err := res.AsStrSlice(); err == nil {
		return strings.Join(list, "\n")
	}
	if str, err := res.ToString(); err == nil {
		return str
	}
	n, _ := res.AsInt64()
	return strconv.FormatInt(n, 10)
}

// Log returns the end of the server's log, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// Close kills the server and removes its directory. It is safe to call
// more than once.
func (s *Server) Close() {
	s.Kill()
	s.remove()
	if s.watchdog != nil {
		_ = s.watchdog.Kill()
	}
}

func (s *Server) remove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.removed {
		_ = os.RemoveAll(s.dir)
		s.removed = true
	}
}
