package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/pgtest"
	"github.com/usersessions/usersessions/pgstore"
)

// TestPostgresDatabase runs the operator commands on a PostgreSQL database
// given as -db URL, with an app's Store open on it meanwhile.
func TestPostgresDatabase(t *testing.T) {
	c := pgtest.Start(t)
	dsn := fmt.Sprintf("postgres://postgres:secret-pw@/postgres?host=%s&port=%d&sslmode=disable",
		url.QueryEscape(c.SocketDir()), pgtest.Port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := pgstore.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := usersessions.NewStore(b, &usersessions.Options{IdleTimeout: time.Hour, CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	operatorCommandsOnServer(t, dsn, "secret-pw", app)
	_, errOut, code := runCmd(t, "compact", "-db", dsn)
	if code != 1 || !strings.Contains(errOut, "is a PostgreSQL server") || strings.Contains(errOut, "secret-pw") {
		t.Fatalf("compact: code %d\n%s", code, errOut)
	}
	down := fmt.Sprintf("postgres://postgres:secret-pw@/postgres?host=%s&port=1&connect_timeout=2", url.QueryEscape(t.TempDir()))
	_, errOut, code = runCmd(t, "ls", "-db", down)
	t.Logf("ls on no server: %s", errOut)
	if code != 1 || !strings.Contains(errOut, "cannot reach") || strings.Contains(errOut, "secret-pw") {
		t.Fatalf("ls on no server: code %d\n%s", code, errOut)
	}
}

// warmLoad loads token until s serves it from its cache.
func warmLoad(s *usersessions.Store, token string) bool {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		before := s.Stats().Hits
		if _, err := s.Load(context.Background(), token); err != nil {
			return false
		}
		if s.Stats().Hits > before {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return false
}

// Two demos on one PostgreSQL database are two instances of one app: a
// user signed in on both sees both sessions on either, and ending one from
// the other signs that browser out at its next request (issue 12).
func TestTwoDemosOnePostgres(t *testing.T) {
	c := pgtest.Start(t)
	dsn := fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(c.SocketDir()), pgtest.Port)
	twoDemosShareSessions(t, func() *usersessions.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := pgstore.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		store, err := usersessions.NewStore(b, &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		return store
	})
}
