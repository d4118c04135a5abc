package main

import (
	"context"
	"errors"
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
	operatorCommandsOnServer(t, url, "", app)
	for _, cmd := range [][]string{{"compact"}, {"backup", "-o", t.TempDir() + "/b.db"}} {
		if _, errOut, code := runCmd(t, append(cmd, "-db", url)...); code != 1 || !strings.Contains(errOut, "is a Redis server") {
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
	twoDemosShareSessions(t, func() *usersessions.Store {
		return redisApp(t, url, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	})
}
