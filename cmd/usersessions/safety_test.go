package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/control"
)

// idleDB is a database of an app without an idle timeout: carol's session
// was last seen ten minutes ago and lives for days yet; dan's is fresh.
func idleDB(t *testing.T) (path, carol, dan string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "idle.db")
	ctx := context.Background()
	then := time.Now().Add(-10 * time.Minute)
	old, err := usersessions.Open(path, &usersessions.Options{
		Now: func() time.Time { return then }, CleanupInterval: -1, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := old.Create(ctx, "carol", usersessions.Client{UserAgent: uaFirefox})
	if err != nil {
		t.Fatal(err)
	}
	carol = s.ID
	old.Close()
	store, err := usersessions.Open(path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s, err = store.Create(ctx, "dan", usersessions.Client{UserAgent: uaChrome})
	if err != nil {
		t.Fatal(err)
	}
	dan = s.ID
	store.Close()
	return path, carol, dan
}

// storedIdle returns the idle timeout kept in the file.
func storedIdle(t *testing.T, path string) time.Duration {
	t.Helper()
	store, err := usersessions.Open(path, &usersessions.Options{IdleTimeout: usersessions.UseStoredIdleTimeout, CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	return store.IdleTimeout()
}

// Issue 11, item 1: "ls -idle-timeout 2m" or "stats -idle-timeout 2m" must
// not store the timeout, or the next plain clear-expired (from cron) ends
// every session idle for two minutes.
func TestReadCommandsKeepSettings(t *testing.T) {
	path, carol, dan := idleDB(t)
	for _, args := range [][]string{
		{"ls", "-idle-timeout", "2m"},
		{"ls", "-idle-timeout", "2m", "-json"},
		{"stats", "-idle-timeout", "2m"},
	} {
		_, stderr, code := runCmd(t, append(args, "-db", path)...)
		if code != exitOK {
			t.Errorf("%q: status %d, stderr %q", args, code, stderr)
		}
		if d := storedIdle(t, path); d != 0 {
			t.Fatalf("%q stored an idle timeout of %v in the file", args, d)
		}
	}
	stdout, stderr, code := runCmd(t, "clear-expired", "-db", path)
	if code != exitOK || !strings.HasPrefix(stdout, "removed 0 expired sessions") {
		t.Errorf("plain clear-expired after ls -idle-timeout: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, _, _ = runCmd(t, "ls", "-db", path)
	if !strings.Contains(stdout, carol) || !strings.Contains(stdout, dan) {
		t.Errorf("sessions lost after ls -idle-timeout and clear-expired:\n%s", stdout)
	}

	// The override still shows what it would mean, in memory only.
	stdout, _, code = runCmd(t, "ls", "-db", path, "-idle-timeout", "2m", "-expired")
	if code != exitOK || !strings.Contains(stdout, carol) || strings.Contains(stdout, dan) {
		t.Errorf("ls -idle-timeout 2m -expired: status %d\n%s", code, stdout)
	}
	stdout, _, _ = runCmd(t, "ls", "-db", path, "-idle-timeout", "2m")
	if strings.Contains(stdout, carol) || !strings.Contains(stdout, dan) {
		t.Errorf("ls -idle-timeout 2m lists carol's idle session as active:\n%s", stdout)
	}
	stdout, _, _ = runCmd(t, "stats", "-db", path, "-idle-timeout", "2m", "-json")
	if !strings.Contains(stdout, `"expired": 1`) || !strings.Contains(stdout, `"idle_timeout": "2m0s"`) {
		t.Errorf("stats -idle-timeout 2m -json:\n%s", stdout)
	}
}

// An idle-timeout override on clear-expired deletes sessions the app would
// keep: it needs -force, and -dry-run shows what would go.
func TestClearExpiredOverride(t *testing.T) {
	path, carol, dan := idleDB(t)
	stdout, stderr, code := runCmd(t, "clear-expired", "-db", path, "-idle-timeout", "2m")
	if code != exitUsage || !strings.Contains(stderr, "-force") || stdout != "" {
		t.Errorf("clear-expired -idle-timeout without -force: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = runCmd(t, "clear-expired", "-db", path, "-idle-timeout", "2m", "-dry-run")
	if code != exitOK || !strings.Contains(stdout, "would remove 1 expired session") || !strings.Contains(stdout, carol) || strings.Contains(stdout, dan) {
		t.Errorf("clear-expired -dry-run: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, _, _ = runCmd(t, "ls", "-db", path)
	if !strings.Contains(stdout, carol) {
		t.Errorf("-dry-run removed carol's session:\n%s", stdout)
	}
	stdout, stderr, code = runCmd(t, "clear-expired", "-db", path, "-idle-timeout", "2m", "-force")
	if code != exitOK || !strings.HasPrefix(stdout, "removed 1 expired session ") || !strings.HasSuffix(stdout, ", 1 left\n") {
		t.Errorf("clear-expired -idle-timeout 2m -force: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, _, _ = runCmd(t, "ls", "-db", path, "-all")
	if strings.Contains(stdout, carol) || !strings.Contains(stdout, dan) {
		t.Errorf("after -force:\n%s", stdout)
	}
	if d := storedIdle(t, path); d != 0 {
		t.Errorf("clear-expired -force stored an idle timeout of %v", d)
	}
	// A plain dry run applies the stored setting.
	stdout, _, code = runCmd(t, "clear-expired", "-db", path, "-dry-run")
	if code != exitOK || !strings.Contains(stdout, "would remove 0 expired sessions") {
		t.Errorf("plain -dry-run: status %d, stdout %q", code, stdout)
	}
}

// revoke writes, but never settings: -idle-timeout means nothing to it.
func TestRevokeRefusesIdleTimeout(t *testing.T) {
	path, _, _ := idleDB(t)
	_, stderr, code := runCmd(t, "revoke", "-db", path, "-user", "dan", "-idle-timeout", "2m")
	if code != exitUsage || !strings.Contains(stderr, "-idle-timeout") {
		t.Errorf("revoke -idle-timeout: status %d, stderr %q", code, stderr)
	}
	if d := storedIdle(t, path); d != 0 {
		t.Errorf("revoke stored an idle timeout of %v", d)
	}
}

// A demo that cannot listen leaves no new database behind (issue 15).
func TestDemoPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := filepath.Join(t.TempDir(), "new.db")
	_, stderr, code := runCmd(t, "demo", "-addr", ln.Addr().String(), "-db", db)
	if code != exitError || !strings.Contains(stderr, "pick another -addr") {
		t.Errorf("demo on a taken port: status %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("the demo created its database though it could not listen")
	}
}

// With the app's control socket, operator commands work on a file the app
// holds (issue 15): a revoked session no longer loads.
func TestThroughControlSocket(t *testing.T) {
	sd := seedDB(t)
	direct := map[string]string{}
	for _, cmd := range []string{"ls", "ls -all -json", "stats -json"} {
		direct[cmd], _, _ = runCmd(t, append(strings.Fields(cmd), "-db", sd.path)...)
	}
	store, err := usersessions.Open(sd.path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	dave, err := store.Create(ctx, "dave", usersessions.Client{UserAgent: uaFirefox})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.EndUser(ctx, "dave", "", usersessions.EndOptions{}); err != nil { // back to the seeded state
		t.Fatal(err)
	}
	dave, _ = store.Create(ctx, "dave", usersessions.Client{UserAgent: uaFirefox})

	// Without the opt-in: the lock, at once.
	_, stderr, code := runCmd(t, "revoke", "-db", sd.path, "-user", "dave")
	if code != exitError || !strings.Contains(stderr, "in use by another process") {
		t.Fatalf("revoke without a socket: status %d, stderr %q", code, stderr)
	}

	ctl, err := control.Serve(store, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	stdout, stderr, code := runCmd(t, "revoke", "-db", sd.path, "-user", "dave")
	if code != exitOK || stdout != "revoked 1 session\n" {
		t.Errorf("revoke through the socket: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := store.Load(ctx, dave.Token); !errors.Is(err, usersessions.ErrNotFound) {
		t.Errorf("dave's session still loads: %v", err)
	}
	_, stderr, code = runCmd(t, "revoke", "-db", sd.path, "-id", dave.ID)
	if code != exitError || !strings.Contains(stderr, "no session with ID") {
		t.Errorf("revoke of a gone ID through the socket: status %d, stderr %q", code, stderr)
	}

	// The same output as with the file.
	sameThroughSocket(t, sd.path, direct)
	stdout, _, code = runCmd(t, "clear-expired", "-db", sd.path)
	if code != exitOK || !strings.HasPrefix(stdout, "removed 3 expired sessions") {
		t.Errorf("clear-expired through the socket: status %d, %q", code, stdout)
	}
	stdout, _, code = runCmd(t, "check", "-db", sd.path)
	if code != exitOK || !strings.Contains(stdout, "ok: 5 sessions") {
		t.Errorf("check through the socket: status %d, %q", code, stdout)
	}
	_, stderr, code = runCmd(t, "compact", "-db", sd.path)
	if code != exitError || !strings.Contains(stderr, "in use by the running app") ||
		!strings.Contains(stderr, "cannot go through its control socket") || !strings.Contains(stderr, " free)") {
		t.Errorf("compact while the app runs: status %d, stderr %q", code, stderr)
	}
	// stats knows the free space from the app.
	stdout, stderr, code = runCmd(t, "stats", "-db", sd.path)
	if code != exitOK || !regexp.MustCompile(`(?m)^  free +\d`).MatchString(stdout) || !strings.Contains(stdout, "(through "+sd.path+".sock)") {
		t.Errorf("stats through the socket: status %d, stderr %q\n%s", code, stderr, stdout)
	}
}

// Through the socket, deadlines follow the app's idle timeout as they do
// with the file: a session idle past it is listed as expired, with the
// same expiry time.
func TestThroughControlSocketIdleDeadlines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	past := time.Now().Add(-2 * time.Hour)
	old, err := usersessions.Open(path, &usersessions.Options{IdleTimeout: time.Hour, Now: func() time.Time { return past },
		CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Create(context.Background(), "idler", usersessions.Client{UserAgent: uaFirefox}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	direct := map[string]string{}
	for _, cmd := range []string{"ls -all -json", "ls -expired", "stats -json"} {
		direct[cmd], _, _ = runCmd(t, append(strings.Fields(cmd), "-db", path)...)
	}
	if !strings.Contains(direct["ls -all -json"], `"active":false`) {
		t.Fatalf("the idle session is not expired in the file: %s", direct["ls -all -json"])
	}
	store, err := usersessions.Open(path, &usersessions.Options{IdleTimeout: time.Hour, CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctl, err := control.Serve(store, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	sameThroughSocket(t, path, direct)
}

// sameThroughSocket runs each command of direct (command line -> its
// output with the file free) on path, now held by an app serving its
// control socket, and fails t unless the output is the same. stats -json
// may differ only in naming the socket and in the file's numbers.
func sameThroughSocket(t *testing.T, path string, direct map[string]string) {
	t.Helper()
	fileNumbers := regexp.MustCompile(`"file_size": \d+,\n(  "free_bytes": \d+,\n  "page_size": \d+,\n)?`)
	for cmd, want := range direct {
		got, stderr, code := runCmd(t, append(strings.Fields(cmd), "-db", path)...)
		if cmd == "stats -json" {
			got = strings.Replace(got, `  "via": "`+path+`.sock",`+"\n", "", 1)
			got, want = fileNumbers.ReplaceAllString(got, ""), fileNumbers.ReplaceAllString(want, "")
		}
		if code != exitOK || got != want {
			t.Errorf("%s through the socket: status %d, stderr %q\n%s\nwant\n%s", cmd, code, stderr, got, want)
		}
	}
}

// backup takes a copy through the control socket while the app holds the
// file (issue 15): the copy opens to an equal store, and checks clean.
func TestBackupThroughControlSocket(t *testing.T) {
	sd := seedDB(t)
	want, _, _ := runCmd(t, "ls", "-all", "-json", "-db", sd.path)
	store, err := usersessions.Open(sd.path, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	out := filepath.Join(t.TempDir(), "copy.db")

	// Without a socket: refused, nothing written.
	_, stderr, code := runCmd(t, "backup", "-db", sd.path, "-o", out)
	if _, err := os.Stat(out); code != exitError || !strings.Contains(stderr, "serves no control socket") || err == nil {
		t.Fatalf("backup of a held file without a socket: status %d, stderr %q, output exists: %v", code, stderr, err == nil)
	}

	ctl, err := control.Serve(store, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	stdout, stderr, code := runCmd(t, "backup", "-db", sd.path, "-o", out)
	if code != exitOK || !strings.Contains(stdout, "from the running app, through "+sd.path+".sock") || !strings.Contains(stdout, ": 8 sessions") {
		t.Fatalf("backup through the socket: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, %v", fi, err)
	}
	// The app keeps running meanwhile, and the copy is the state it had.
	if _, err := store.Create(context.Background(), "later", usersessions.Client{}); err != nil {
		t.Fatal(err)
	}
	got, stderr, code := runCmd(t, "ls", "-all", "-json", "-db", out)
	if code != exitOK || got != want || got == "" {
		t.Errorf("ls of the copy: status %d, stderr %q\n%s\nwant\n%s", code, stderr, got, want)
	}
	stdout, _, code = runCmd(t, "check", "-db", out)
	if code != exitOK || !strings.Contains(stdout, "ok: bbolt pages consistent, 8 sessions") {
		t.Errorf("check of the copy: status %d, %q", code, stdout)
	}

	// An existing backup is kept without -force, replaced with it.
	before, _ := os.ReadFile(out)
	_, stderr, code = runCmd(t, "backup", "-db", sd.path, "-o", out)
	if after, _ := os.ReadFile(out); code != exitError || !strings.Contains(stderr, "exists; nothing written") || !bytes.Equal(before, after) {
		t.Errorf("backup over an existing file: status %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCmd(t, "backup", "-db", sd.path, "-o", out, "-force")
	if code != exitOK {
		t.Errorf("backup -force: status %d, stderr %q", code, stderr)
	}
	if stdout, _, _ := runCmd(t, "ls", "-user", "later", "-db", out); !strings.Contains(stdout, "1 session") {
		t.Errorf("the forced backup lacks the newer session:\n%s", stdout)
	}
	if left, _ := filepath.Glob(out + ".tmp-*"); len(left) > 0 {
		t.Errorf("backup left %q behind", left)
	}
}

// The demo pointed at an app's file keeps the app's idle timeout.
func TestDemoKeepsIdleTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	store, err := usersessions.Open(path, &usersessions.Options{IdleTimeout: 30 * time.Minute, CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	done := make(chan int, 1)
	go func() {
		_, _, code := runCmd(t, "demo", "-addr", "127.0.0.1:0", "-db", path)
		done <- code
	}()
	// The control socket appears once the demo serves (and has its
	// SIGINT handler): stop it as Ctrl-C would.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path + ".sock"); err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("the demo stopped early: status %d", code)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if self, err := os.FindProcess(os.Getpid()); err != nil || self.Signal(os.Interrupt) != nil {
		t.Fatal("cannot interrupt the demo")
	}
	if code := <-done; code != exitOK {
		t.Errorf("demo: status %d", code)
	}
	if d := storedIdle(t, path); d != 30*time.Minute {
		t.Errorf("after the demo the file's idle timeout is %v", d)
	}
}
