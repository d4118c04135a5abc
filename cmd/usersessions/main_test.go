package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	bolt "go.etcd.io/bbolt"
)

// TestMain serves as the probe child when a test runs probeFile: the test
// binary is the re-executed program then.
func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) == "1" && len(os.Args) > 1 && os.Args[1] == probeCommand {
		os.Exit(runProbe(os.Args[2:], os.Stdout))
	}
	os.Exit(m.Run())
}

// runCmd runs the program with args and returns its output and status.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runSafely(args, &out, &errb)
	return out.String(), errb.String(), code
}

// seeded is a database with known sessions.
type seeded struct {
	path    string
	alice   []string // IDs of alice's active sessions, in creation order
	bob     string   // bob's active session
	expired int      // expired sessions: two of bob's, one anonymous
}

const (
	uaChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// seedDB writes a database: three active sessions of alice (192.0.2.10,
// 198.51.100.7, none), one of bob, one anonymous, and three sessions that
// expired a day ago (two of bob's, one anonymous).
func seedDB(t *testing.T) *seeded {
	t.Helper()
	sd := &seeded{path: filepath.Join(t.TempDir(), "sessions.db"), expired: 3}
	ctx := context.Background()
	past := time.Now().Add(-48 * time.Hour)
	old, err := usersessions.Open(sd.path, &usersessions.Options{
		Lifetime: 24 * time.Hour, Now: func() time.Time { return past },
		CleanupInterval: -1, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"bob", "bob", ""} {
		if _, err := old.Create(ctx, user, usersessions.Client{UserAgent: uaFirefox}); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := usersessions.Open(sd.path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	create := func(user, ip, ua string) string {
		t.Helper()
		c := usersessions.Client{UserAgent: ua}
		if ip != "" {
			c.IP = netip.MustParseAddr(ip)
		}
		s, err := store.Create(ctx, user, c)
		if err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	sd.alice = []string{
		create("alice", "192.0.2.10", uaChrome),
		create("alice", "198.51.100.7", uaIPhone),
		create("alice", "", uaFirefox),
	}
	sd.bob = create("bob", "203.0.113.5", uaFirefox)
	create("", "203.0.113.6", uaChrome)
	return sd
}

// holdDB opens path in this process, as a running app would, until the
// test ends.
func holdDB(t *testing.T, path string) {
	t.Helper()
	store, err := usersessions.Open(path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
}

func TestUsage(t *testing.T) {
	_, stderr, code := runCmd(t)
	if code != exitUsage || !strings.Contains(stderr, "Commands:") {
		t.Errorf("no arguments: status %d, stderr %q", code, stderr)
	}
	stdout, _, code := runCmd(t, "help")
	if code != exitOK || !strings.Contains(stdout, "clear-expired") {
		t.Errorf("help: status %d, stdout %q", code, stdout)
	}
	stdout, _, code = runCmd(t, "help", "ls")
	if code != exitOK || !strings.Contains(stdout, "usersessions ls [-db PATH]") || !strings.Contains(stdout, "-limit") {
		t.Errorf("help ls: status %d, stdout %q", code, stdout)
	}
	_, stderr, code = runCmd(t, "help", "frobnicate")
	if code != exitUsage || lastLine(stderr) != `usersessions: unknown command "frobnicate"` {
		t.Errorf("help frobnicate: status %d, stderr %q", code, stderr)
	}
	for _, arg := range []string{"version", "--version"} {
		stdout, _, code = runCmd(t, arg)
		if code != exitOK || !strings.HasPrefix(stdout, "usersessions ") || !strings.Contains(stdout, "go1.") {
			t.Errorf("%s: status %d, stdout %q", arg, code, stdout)
		}
	}
	_, stderr, code = runCmd(t, "frobnicate")
	if code != exitUsage || !strings.Contains(stderr, "Commands:") || lastLine(stderr) != `usersessions: unknown command "frobnicate"` {
		t.Errorf("unknown command: status %d, stderr %q; want the usage, then the error last", code, stderr)
	}
}

// lastLine returns the last line of s that is not empty.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func TestBadUsage(t *testing.T) {
	t.Setenv(licenseKeyEnv, "")
	db := filepath.Join(t.TempDir(), "none.db")
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"ls", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"ls", "-db", db, "extra"}, `unexpected argument "extra"`},
		{[]string{"ls", "-expired", "-all"}, "-expired and -all exclude each other"},
		{[]string{"clear-expired", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"stats", "-json=maybe"}, "invalid boolean value"},
		{[]string{"revoke"}, "give exactly one of -user and -id"},
		{[]string{"revoke", "-user", "a", "-id", "b"}, "give exactly one of -user and -id"},
		{[]string{"revoke", "-id", "b", "-keep", "c"}, "-keep spares one session of a user: it needs -user"},
		{[]string{"revoke", "-keep", "c"}, "-keep spares one session of a user: it needs -user"},
		{[]string{"ls", "-limit", "-1"}, "-limit wants a number"},
		{[]string{"demo", "-trusted-proxies", "10.0.0.0/8,nonsense"}, `"nonsense" is not a CIDR`},
		{[]string{"demo", "-addr"}, "flag needs an argument"},
		{[]string{"demo", "-geoip-lang", "nl,!!"}, `-geoip-lang: "!!" is not a language tag`},
		{[]string{"backup", "-db", db, "-o", "postgres://h/db"}, "-o wants a file, not a URL"},
		{[]string{"geoip"}, "geoip needs a subcommand"},
		{[]string{"geoip", "upload"}, `unknown geoip subcommand "upload"`},
		{[]string{"geoip", "download", "-dir", t.TempDir()}, "a license key is needed: set MAXMIND_LICENSE_KEY"},
	} {
		stdout, stderr, code := runCmd(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, "Usage:") || stdout != "" {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want status 2 with the usage", tc.args, code, stdout, stderr)
		}
		// The problem comes last, where the eye lands, not above the
		// usage (issue 18, item 19).
		if last := lastLine(stderr); !strings.HasPrefix(last, "usersessions: ") || !strings.Contains(last, tc.want) {
			t.Errorf("%q: the last line of stderr is %q, want the error %q", tc.args, last, tc.want)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a usage error created the database")
	}
	// -h prints the usage and succeeds; hidden flags stay hidden.
	_, stderr, code := runCmd(t, "geoip", "download", "-h")
	if code != exitOK || !strings.Contains(stderr, "-edition") || strings.Contains(stderr, "base-url") {
		t.Errorf("geoip download -h: status %d, stderr %q", code, stderr)
	}
}

func TestMissingDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "none.db")
	for _, cmd := range []string{"ls", "stats", "clear-expired"} {
		_, stderr, code := runCmd(t, cmd, "-db", db)
		if code != exitError || !strings.Contains(stderr, "no session database at "+db) {
			t.Errorf("%s: status %d, stderr %q", cmd, code, stderr)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("an operator command created the database")
	}
}

func TestLockedDatabase(t *testing.T) {
	sd := seedDB(t)
	holdDB(t, sd.path)
	want := sd.path + " is in use by another process (is the app running?)"
	for _, args := range [][]string{
		{"ls"}, {"stats"}, {"clear-expired"}, {"revoke", "-user", "alice"},
		{"demo", "-addr", "127.0.0.1:0"},
	} {
		start := time.Now()
		stdout, stderr, code := runCmd(t, append(args, "-db", sd.path)...)
		if code != exitError || strings.TrimSpace(stderr) != "usersessions: "+want || stdout != "" {
			t.Errorf("%q: status %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%q took %v to report the lock", args, d)
		}
	}
	stdout, _, code := runCmd(t, "clear-expired", "-skip-locked", "-db", sd.path)
	if code != exitOK || !strings.Contains(stdout, "skipped: "+sd.path+" is in use") {
		t.Errorf("clear-expired -skip-locked: status %d, stdout %q", code, stdout)
	}
}

func TestCorruptDatabase(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("app")); return err })
	db.Close()
	for _, path := range []string{garbage, other} {
		for _, cmd := range []string{"ls", "stats", "clear-expired"} {
			_, stderr, code := runCmd(t, cmd, "-db", path)
			if code != exitError || !strings.Contains(stderr, path+" is not a usersessions database") {
				t.Errorf("%s on %s: status %d, stderr %q", cmd, filepath.Base(path), code, stderr)
			}
		}
	}

	// A damaged record: the other sessions are listed, the problem is
	// reported, the status is 1.
	sd := seedDB(t)
	db, err = bolt.Open(sd.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.RawURLEncoding.DecodeString(sd.alice[0])
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("sessions")).Put(key, []byte{0xff, 0xfe}) })
	db.Close()
	stdout, stderr, code := runCmd(t, "ls", "-db", sd.path)
	if code != exitError || !strings.Contains(stdout, "4 sessions") || !strings.Contains(stderr, "1 unreadable session record skipped") {
		t.Errorf("ls with a damaged record: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = runCmd(t, "stats", "-db", sd.path)
	if code != exitError || !strings.Contains(stdout, "unreadable    1") || !strings.Contains(stderr, "1 unreadable session record") {
		t.Errorf("stats with a damaged record: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestBinary runs the built program, for real exit statuses and signals.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "usersessions")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sd := seedDB(t)

	out, err := exec.Command(bin, "ls", "-db", sd.path).Output()
	if err != nil || !strings.HasPrefix(string(out), "ID ") || !strings.Contains(string(out), "alice") {
		t.Errorf("ls: %v, output %q", err, out)
	}
	cmd := exec.Command(bin, "ls", "-bogus")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(stderr.String(), "Usage:") {
		t.Errorf("ls -bogus: %v, status %d, stderr %q", err, cmd.ProcessState.ExitCode(), stderr.String())
	}

	// The demo prints its real address, serves, and stops cleanly on
	// SIGINT; the sessions it made are on disk afterwards.
	demo := exec.Command(bin, "demo", "-addr", "127.0.0.1:0", "-db", sd.path)
	pipe, err := demo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	defer demo.Process.Kill()
	line, err := bufio.NewReader(pipe).ReadString('\n')
	const prefix = "usersessions demo listening on http://127.0.0.1:"
	if err != nil || !strings.HasPrefix(line, prefix) || strings.HasPrefix(line, prefix+"0/") {
		t.Fatalf("demo's first line %q, %v", line, err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "usersessions demo listening on "))
	resp, err := http.PostForm(url+"login", map[string][]string{"username": {"dave"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		// Without a cookie jar the redirect to the sessions page lands
		// on the sign-in page again.
		t.Errorf("login: %s at %s", resp.Status, resp.Request.URL)
	}
	// While the demo runs, operator commands reach it through its
	// control socket.
	resp, err = http.PostForm(url+"login", map[string][]string{"username": {"erin"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out, err = exec.Command(bin, "revoke", "-db", sd.path, "-user", "erin").CombinedOutput()
	if err != nil || string(out) != "revoked 1 session\n" {
		t.Errorf("revoke while the demo runs: %v, %q", err, out)
	}
	demo.Process.Signal(syscall.SIGINT)
	if err := demo.Wait(); err != nil {
		t.Errorf("demo after SIGINT: %v", err)
	}
	out, err = exec.Command(bin, "ls", "-db", sd.path, "-user", "dave").Output()
	if err != nil || !strings.Contains(string(out), "dave") {
		t.Errorf("ls -user dave after the demo: %v, %q", err, out)
	}
	out, _ = exec.Command(bin, "ls", "-db", sd.path, "-user", "erin").Output()
	if string(out) != "no active sessions\n" {
		t.Errorf("ls -user erin after the demo: %q", out)
	}
	if _, err := os.Stat(sd.path + ".sock"); !os.IsNotExist(err) {
		t.Errorf("the demo left its control socket: %v", err)
	}
}
