package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/redistest"
	"github.com/usersessions/usersessions/redisstore"
)

// redisApp opens an app's Store on the Redis server at url.
func redisApp(t *testing.T, url string, opts *usersessions.Options) *usersessions.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := redisstore.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := usersessions.NewStore(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// TestRedisDatabase runs the operator commands on a Redis server given as
// -db URL, with an app's Store open on it meanwhile (issue 20).
func TestRedisDatabase(t *testing.T) {
	url := redistest.Start(t, redistest.Config{}).URL()
	app := redisApp(t, url, &usersessions.Options{IdleTimeout: time.Hour, CleanupInterval: -1, Logger: quietLogger()})
	ctx := context.Background()
	cl := usersessions.Client{IP: netip.MustParseAddr("192.0.2.10"), UserAgent: uaFirefox}
	a1, err := app.Create(ctx, "alice", cl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Create(ctx, "alice", cl); err != nil {
		t.Fatal(err)
	}
	bob, err := app.Create(ctx, "bob", cl)
	if err != nil {
		t.Fatal(err)
	}
	if !warmLoad(app, a1.Token) {
		t.Fatal("the app never cached alice's session")
	}

	out, errOut, code := runCmd(t, "ls", "-db", url)
	if code != 0 || !strings.Contains(out, "3 sessions") || !strings.Contains(out, bob.ID) {
		t.Fatalf("ls: code %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, "stats", "-db", url); code != 0 || !strings.Contains(out, "1h") {
		t.Fatalf("stats (the app's stored idle timeout, 1h): code %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, "check", "-db", url); code != 0 || !strings.Contains(out, "ok: 3 sessions") {
		t.Fatalf("check: code %d\n%s\n%s", code, out, errOut)
	}
	// Revoking from the command line reaches the running app's cache.
	if out, errOut, code = runCmd(t, "revoke", "-db", url, "-user", "alice"); code != 0 {
		t.Fatalf("revoke: code %d\n%s\n%s", code, out, errOut)
	}
	deadline := time.Now().Add(time.Second)
	for {
		if _, err := app.Load(ctx, a1.Token); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the app still accepts alice's token 1 s after revoke")
		}
		time.Sleep(time.Millisecond)
	}
	if n, err := app.Count(ctx); err != nil || n != 1 {
		t.Fatalf("Count after revoke = %d, %v", n, err)
	}
	if app.IdleTimeout() != time.Hour {
		t.Fatalf("the commands changed the stored idle timeout")
	}
	if out, errOut, code = runCmd(t, "clear-expired", "-db", url); code != 0 {
		t.Fatalf("clear-expired: code %d\n%s\n%s", code, out, errOut)
	}
	if n, err := app.Count(ctx); err != nil || n != 1 {
		t.Fatalf("clear-expired removed a live session: Count = %d, %v", n, err)
	}
	for _, cmd := range [][]string{{"compact"}, {"backup", "-o", t.TempDir() + "/b.db"}} {
		if _, errOut, code = runCmd(t, append(cmd, "-db", url)...); code != 1 || !strings.Contains(errOut, "is a Redis server") {
			t.Fatalf("%s: code %d\n%s", cmd[0], code, errOut)
		}
	}
}

// A redis:// -db with no server there: every command says so plainly,
// never shows the password, and creates no file.
func TestRedisURLWithoutServer(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, db := range []string{"redis://app:s3cret@127.0.0.1:1/0", "REDIS://app:s3cret@127.0.0.1:1", "rediss://:s3cret@127.0.0.1:1", "unix://" + dir + "/none.sock"} {
		for _, args := range [][]string{{"ls"}, {"revoke", "-user", "alice"}, {"stats"}, {"clear-expired"}, {"check"}, {"demo", "-addr", "127.0.0.1:0"}} {
			stdout, stderr, code := runCmd(t, append(args, "-db", db)...)
			if code != exitError || !strings.Contains(stderr, "cannot reach the Redis server") || stdout != "" {
				t.Errorf("%v -db %s: status %d, stdout %q, stderr %q", args, db, code, stdout, stderr)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("%v: the password is shown: %q", args, stderr)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("files created for a URL: %v", entries)
	}
	for db, want := range map[string]string{
		"redis://h": "Redis", "rediss://u@h:6380/1": "Redis", "unix:///run/redis.sock": "Redis", "valkey://h": "Redis",
		"postgres://h/db": "PostgreSQL", "sessions.db": "", "redis:/x": "", "./redis://x": "",
	} {
		if got := serverKind(db); got != want {
			t.Errorf("serverKind(%q) = %q, want %q", db, got, want)
		}
	}
	if got := redactDB("redis://app:s3cret@h:6379/0"); strings.Contains(got, "s3cret") || !strings.Contains(got, "app:") {
		t.Errorf("redactDB: %q", got)
	}
	if _, err := openStore("redis://127.0.0.1:1", nil); !errors.Is(err, usersessions.ErrUnavailable) {
		t.Errorf("openStore of a URL with no server: %v", err)
	}
}

// Two demos on one Redis server are two instances of one app: a user
// signed in on both sees both sessions on either, and ending one from the
// other signs that browser out at its next request.
func TestTwoDemosOneRedis(t *testing.T) {
	url := redistest.Start(t, redistest.Config{}).URL()
	demo := func() string {
		store := redisApp(t, url, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
		srv := httptest.NewServer(newDemoHandler(store, demoConfig{}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	baseA, baseB := demo(), demo()
	laptop := newBrowser(t, baseA, uaChrome)
	phone := newBrowser(t, baseB, uaIPhone)
	laptop.login("alice")
	phone.login("alice")
	ids, current := laptop.sessions()
	if len(ids) != 2 {
		t.Fatalf("instance A lists %d of alice's sessions, want both", len(ids))
	}
	other := ids[0]
	if other == current {
		other = ids[1]
	}
	if got, _ := phone.sessions(); len(got) != 2 {
		t.Fatalf("instance B lists %d of alice's sessions, want both", len(got))
	}
	resp, _ := laptop.do("POST", "/account/sessions/"+other+"/end", nil, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("A ends B's session: %s", resp.Status)
	}
	if resp, body := phone.do("GET", "/account/sessions/", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your session has ended") {
		t.Fatalf("B's browser after its session was ended on A: %s", resp.Status)
	}
}
